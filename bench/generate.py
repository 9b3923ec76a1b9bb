#!/usr/bin/env python3
"""Load the benchmark dataset into a migrated FinVision database.

At --scale 1.0: 20 organizations, 2,000 users, 500 models (20 INPUT metrics x 36 months each),
2,000 scenarios, 1.44 M metric values and 17,000 audit events. --scale shrinks the number of
organizations; every organization keeps the same shape (100 users, 25 models, 4 scenarios per
model, 850 audit events), so the work of one request is the same at every scale and only the
table sizes change.

Small tables and the audit history are built here (the audit hash chain is computed exactly as
src/domain/audit/record.rs does, so `verifyAuditChain` passes) and sent with COPY FROM STDIN;
the metric values are one set-based INSERT ... SELECT generate_series in PostgreSQL. Everything
runs in one psql transaction. Only the standard library and `psql` are needed.

Every bench user is an OWNER, ADMIN, ANALYST or VIEWER of exactly one organization; each ADMIN
gets a session whose token is written to the ids file (tokens are `fvs_` + base64url of 32
bytes; sessions.token_hash is the SHA-256 of the token, as src/domain/auth/sessions.rs).

    bench/generate.py --database-url postgres://postgres@127.0.0.1:5432/fv_bench --scale 0.05

--via-api URL loads the same shape through a running server's GraphQL API instead: the users
are still inserted with SQL (registration is rate-limited per address and hashes every
password), everything else is a real mutation signed in as the organization's OWNER
(createOrganization, addMember, createModel, defineMetric, createScenario, upsertMetricValues
with one scenario's 720 values per call), so the audit history is the one those mutations write
(about 825 events per organization) and each ADMIN's token comes from `login`. All users share the
hash of `template@bench.example`, whose password --password (default `bench-password`) must be.
"""

import argparse
import base64
import datetime as dt
import http.client
import hashlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.parse
import uuid

ORGS_FULL = 20
USERS_PER_ORG = 100
ADMINS_PER_ORG = 4  # users 1..4 of each organization; user 0 is the OWNER
MODELS_PER_ORG = 25
METRICS_PER_MODEL = 20
MONTHS = 36
SCENARIO_KINDS = [("Base", "BASE"), ("Upside", "UPSIDE"), ("Downside", "DOWNSIDE"), ("Custom", "CUSTOM")]
AUDIT_PER_ORG = 850
START = dt.date(2024, 1, 1)
# A valid argon2id PHC string whose password nobody knows; run.sh passes a real one instead
# (from `finvision create-user`), so bench users can also sign in through the API.
PLACEHOLDER_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2hiZW5jaGJlbmNo$"
    "Jm4v0X8nXyc8mBLxR0SgxOq+2a8k3T9oD1S9wXk0Wfs"
)


def global_id(kind, *ids):
    """src/api/relay.rs: base64url (no padding) of `Kind:uuid[:uuid]`."""
    raw = ":".join([kind] + [str(i) for i in ids])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def canonical_json(value):
    """src/domain/audit/chain.rs canonical_json: sorted keys, no white space."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rfc3339_micros(ts):
    """chrono to_rfc3339_opts(SecondsFormat::Micros, true)."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def copy_value(v):
    """One field of COPY's text format."""
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, bytes):
        return "\\\\x" + v.hex()
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


# Ids for pgbench (the floor): position -> id, in a schema of its own.
BENCH_IDS_SQL = """
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.scenario_ids, bench.org_ids;
CREATE TABLE bench.scenario_ids AS
  SELECT row_number() OVER (ORDER BY s.id)::int AS n, s.id FROM scenarios s WHERE s.deleted_at IS NULL;
ALTER TABLE bench.scenario_ids ADD PRIMARY KEY (n);
CREATE TABLE bench.org_ids AS
  SELECT row_number() OVER (ORDER BY o.slug)::int AS n, o.id, o.slug FROM organizations o
  WHERE o.deleted_at IS NULL AND o.slug LIKE 'bench-org-%';
ALTER TABLE bench.org_ids ADD PRIMARY KEY (n);
"""


class Script:
    """A psql script: COPY blocks with inline data and plain SQL."""

    def __init__(self):
        self.parts = []

    def sql(self, text):
        self.parts.append(text.rstrip() + "\n")

    def copy(self, table, columns, rows):
        self.parts.append(f"COPY {table} ({', '.join(columns)}) FROM STDIN;\n")
        self.parts.extend("\t".join(copy_value(v) for v in row) + "\n" for row in rows)
        self.parts.append("\\.\n")

    def text(self):
        return "".join(self.parts)


def build(scale, seed, password_hash, now):
    rng = random.Random(seed)

    def new_uuid():
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    n_orgs = max(1, round(ORGS_FULL * scale))
    orgs, users, memberships, sessions, models, metrics, scenarios, audit = [], [], [], [], [], [], [], []
    ids = {"scale": scale, "organizations": [], "scenarios": []}
    expires = now + dt.timedelta(days=30)

    for o in range(n_orgs):
        org_id = new_uuid()
        slug = f"bench-org-{o + 1:02d}"
        orgs.append((org_id, f"Bench Organization {o + 1:02d}", slug))
        org_users = []
        for u in range(USERS_PER_ORG):
            user_id = new_uuid()
            n = o * USERS_PER_ORG + u + 1
            users.append((user_id, f"user{n:05d}@bench.example", password_hash, f"Bench User {n:05d}"))
            role = "OWNER" if u == 0 else "ADMIN" if u <= ADMINS_PER_ORG else "ANALYST" if u % 3 else "VIEWER"
            memberships.append((org_id, user_id, role, None if u == 0 else org_users[0]))
            org_users.append(user_id)
        tokens = []
        for user_id in org_users[1 : ADMINS_PER_ORG + 1]:
            token = "fvs_" + base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
            sessions.append((new_uuid(), user_id, hashlib.sha256(token.encode()).digest(), expires, now))
            tokens.append(token)
        org_models = []
        for m in range(MODELS_PER_ORG):
            model_id = new_uuid()
            status = ("ACTIVE", "ACTIVE", "DRAFT", "ARCHIVED")[m % 4]
            created_by = org_users[rng.randrange(ADMINS_PER_ORG + 1)]
            end = dt.date(START.year + (MONTHS - 1) // 12, (MONTHS - 1) % 12 + 1, 1)
            models.append((model_id, org_id, f"Model {o + 1:02d}-{m + 1:03d}", "USD", "MONTH", START, end, status, created_by))
            for k in range(METRICS_PER_MODEL):
                metrics.append((new_uuid(), model_id, f"input_{k + 1:02d}", f"Input {k + 1:02d}", "CURRENCY", "INPUT", k))
            base = None
            for name, kind in SCENARIO_KINDS:
                scenario_id = new_uuid()
                scenarios.append((scenario_id, model_id, name, kind, base, created_by))
                base = base or scenario_id
                ids["scenarios"].append({"id": global_id("Scenario", scenario_id), "org": o})
            org_models.append(model_id)
        # Audit history: model and scenario creations, then value edits, spread over a year.
        for e in range(AUDIT_PER_ORG):
            model_id = org_models[e % MODELS_PER_ORG]
            created = now - dt.timedelta(days=365) + dt.timedelta(seconds=e * 30000 + o, microseconds=rng.randrange(10**6))
            if e < MODELS_PER_ORG:
                action, etype, eid, old, new = "model.create", "FinancialModel", model_id, None, {"name": f"Model {o + 1:02d}-{e + 1:03d}"}
            else:
                action, etype, eid = "metric_values.upsert", "Scenario", scenarios[-(e % (MODELS_PER_ORG * 4)) - 1][0]
                old, new = {"count": 0}, {"count": 1 + e % 36}
            audit.append({
                "organization_id": org_id, "actor_user_id": org_users[1 + e % ADMINS_PER_ORG],
                "action": action, "entity_type": etype, "entity_id": eid,
                "old_values": old, "new_values": new, "request_id": f"bench-{o:02d}-{e:05d}",
                "created_at": created,
            })
        ids["organizations"].append({
            "id": global_id("Organization", org_id), "uuid": str(org_id), "slug": slug, "tokens": tokens,
        })

    # Sequence order is time order across organizations; the chain is per organization.
    audit.sort(key=lambda ev: ev["created_at"])
    heads = {}
    audit_rows = []
    for ev in audit:
        doc = {
            "organization_id": str(ev["organization_id"]), "actor_user_id": str(ev["actor_user_id"]),
            "actor_api_key_id": None, "action": ev["action"], "entity_type": ev["entity_type"],
            "entity_id": str(ev["entity_id"]), "old_values": ev["old_values"], "new_values": ev["new_values"],
            "ip_address": None, "user_agent": None, "request_id": ev["request_id"],
            "created_at": rfc3339_micros(ev["created_at"]),
        }
        prev = heads.get(ev["organization_id"])
        h = hashlib.sha256((prev or b"") + canonical_json(doc).encode()).digest()
        heads[ev["organization_id"]] = h
        audit_rows.append((
            ev["organization_id"], ev["actor_user_id"], ev["action"], ev["entity_type"], ev["entity_id"],
            None if ev["old_values"] is None else json.dumps(ev["old_values"]),
            json.dumps(ev["new_values"]), ev["request_id"], ev["created_at"].isoformat(), prev, h,
        ))

    s = Script()
    s.sql("\\set ON_ERROR_STOP on")
    s.sql("BEGIN;")
    s.copy("organizations", ["id", "name", "slug"], orgs)
    s.copy("users", ["id", "email", "password_hash", "display_name"], users)
    s.copy("memberships", ["organization_id", "user_id", "role", "invited_by"], memberships)
    s.copy("sessions", ["id", "user_id", "token_hash", "expires_at", "last_used_at"],
           [(a, b, c, d.isoformat(), e.isoformat()) for a, b, c, d, e in sessions])
    s.copy("financial_models", ["id", "organization_id", "name", "currency", "period_granularity",
                                "start_period", "end_period", "status", "created_by"], models)
    s.copy("metrics", ["id", "model_id", "key", "name", "unit", "kind", "display_order"], metrics)
    s.copy("scenarios", ["id", "model_id", "name", "kind", "base_scenario_id", "created_by"], scenarios)
    # Every scenario stores all its values (the base chain is still resolved by the API). The
    # organization is named: the trigger that fills it otherwise runs once per row.
    s.sql(f"""
INSERT INTO metric_values (scenario_id, organization_id, metric_id, period, value)
SELECT s.id, s.organization_id, m.id, (date '{START.isoformat()}' + make_interval(months => g))::date,
       round((1000 + random() * 9000)::numeric, 2)
FROM scenarios s
JOIN metrics m ON m.model_id = s.model_id
CROSS JOIN generate_series(0, {MONTHS - 1}) AS g;""")
    s.copy("audit_events", ["organization_id", "actor_user_id", "action", "entity_type", "entity_id",
                            "old_values", "new_values", "request_id", "created_at", "prev_hash", "hash"],
           audit_rows)
    s.sql(BENCH_IDS_SQL)
    s.sql("COMMIT;")
    s.sql("ANALYZE;")
    counts = {
        "organizations": len(orgs), "users": len(users), "models": len(models), "metrics": len(metrics),
        "scenarios": len(scenarios), "metric_values": len(scenarios) * METRICS_PER_MODEL * MONTHS,
        "audit_events": len(audit_rows), "sessions": len(sessions),
    }
    return s.text(), ids, counts


class Api:
    """A keep-alive GraphQL client (http.client, standard library)."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.path = u.netloc, u.path or "/graphql"
        self.conn = http.client.HTTPConnection(self.host, timeout=60)
        self.calls = 0

    def __call__(self, query, variables=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps({"query": query, "variables": variables or {}})
        for attempt in range(2):
            try:
                self.conn.request("POST", self.path, body, headers)
                r = self.conn.getresponse()
                data = json.loads(r.read())
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn = http.client.HTTPConnection(self.host, timeout=60)
                if attempt:
                    raise
        self.calls += 1
        if data.get("errors"):
            raise SystemExit(f"API error: {data['errors']}\nquery: {query}\nvariables: {variables}")
        return data["data"]


def load_via_api(a, password_hash, now):
    """Users with SQL, the rest through the API; returns the ids file's content and counts."""
    rng = random.Random(a.seed)
    n_orgs = max(1, round(ORGS_FULL * a.scale))
    users = []  # per organization: [(email, display name)]
    rows = []
    for o in range(n_orgs):
        org_users = []
        for u in range(USERS_PER_ORG):
            n = o * USERS_PER_ORG + u + 1
            org_users.append((f"user{n:05d}@bench.example", f"Bench User {n:05d}"))
            rows.append((uuid.UUID(int=rng.getrandbits(128), version=4), org_users[-1][0], password_hash, org_users[-1][1]))
        users.append(org_users)
    s = Script()
    s.sql("\\set ON_ERROR_STOP on")
    s.copy("users", ["id", "email", "password_hash", "display_name"], rows)
    run_psql(a.database_url, s.text())

    api = Api(a.via_api)
    login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
    ids = {"scale": a.scale, "organizations": [], "scenarios": []}
    end = dt.date(START.year + (MONTHS - 1) // 12, (MONTHS - 1) % 12 + 1, 1)
    periods = [dt.date(START.year + (START.month - 1 + i) // 12, (START.month - 1 + i) % 12 + 1, 1).isoformat()
               for i in range(MONTHS)]
    for o in range(n_orgs):
        owner = api(login, {"e": users[o][0][0], "p": a.password})["login"]["token"]
        slug = f"bench-org-{o + 1:02d}"
        org = api("mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
                  {"i": {"name": f"Bench Organization {o + 1:02d}", "slug": slug}}, owner)["createOrganization"]["id"]
        for u, (email, _) in enumerate(users[o][1:], start=1):
            role = "ADMIN" if u <= ADMINS_PER_ORG else "ANALYST" if u % 3 else "VIEWER"
            api("mutation($i: AddMemberInput!) { addMember(input: $i) { role } }",
                {"i": {"organizationId": org, "email": email, "role": role}}, owner)
        tokens = [api(login, {"e": users[o][u][0], "p": a.password})["login"]["token"]
                  for u in range(1, ADMINS_PER_ORG + 1)]
        for m in range(MODELS_PER_ORG):
            actor = rng.choice([owner] + tokens)
            model = api("mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
                        {"i": {"organizationId": org, "name": f"Model {o + 1:02d}-{m + 1:03d}", "currency": "USD",
                               "periodGranularity": "MONTH", "startPeriod": START.isoformat(),
                               "endPeriod": end.isoformat()}}, actor)["createModel"]["id"]
            for k in range(METRICS_PER_MODEL):
                api("mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
                    {"i": {"modelId": model, "key": f"input_{k + 1:02d}", "name": f"Input {k + 1:02d}",
                           "unit": "CURRENCY", "kind": "INPUT", "displayOrder": k}}, actor)
            base = None
            for name, kind in SCENARIO_KINDS:
                sc = api("mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
                         {"i": {"modelId": model, "name": name, "kind": kind, "baseScenarioId": base}},
                         actor)["createScenario"]["id"]
                base = base or sc
                values = [{"metricKey": f"input_{k + 1:02d}", "period": p, "value": f"{rng.uniform(1000, 10000):.2f}"}
                          for k in range(METRICS_PER_MODEL) for p in periods]
                api("mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }",
                    {"i": {"scenarioId": sc, "values": values}}, actor)
                ids["scenarios"].append({"id": sc, "org": o})
        ids["organizations"].append({"id": org, "slug": slug, "tokens": tokens})
        print(f"organization {o + 1}/{n_orgs} loaded ({api.calls} API calls so far)", file=sys.stderr)
    run_psql(a.database_url, BENCH_IDS_SQL + "\nANALYZE;\n")
    counts = {"api_calls": api.calls, "organizations": n_orgs, "users": len(rows),
              "scenarios": len(ids["scenarios"]),
              "metric_values": len(ids["scenarios"]) * METRICS_PER_MODEL * MONTHS}
    return ids, counts


def write_ids(path, ids):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(ids, f)


def run_psql(url, script):
    r = subprocess.run(["psql", url, "-X", "-q", "-f", "-"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"psql failed:\n{r.stderr}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fv_bench"))
    p.add_argument("--scale", type=float, default=1.0, help="1.0 = 20 organizations; 0.05 = 1")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--password-hash", default=None,
                   help="argon2id PHC string for every user (default: the hash of user "
                        "template@bench.example if it exists, else an unusable placeholder)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "ids.json"))
    p.add_argument("--sql-only", action="store_true", help="print the psql script instead of running it")
    p.add_argument("--via-api", metavar="URL", help="load through this server's /graphql (see above)")
    p.add_argument("--password", default="bench-password", help="the template user's password (--via-api)")
    a = p.parse_args()

    password_hash = a.password_hash
    if password_hash is None and not a.sql_only:
        r = subprocess.run(["psql", a.database_url, "-XAtqc",
                            "SELECT password_hash FROM users WHERE email = 'template@bench.example'"],
                           capture_output=True, text=True, check=True)
        password_hash = r.stdout.strip() or None
    t0 = time.time()
    if a.via_api:
        if not password_hash:
            sys.exit("--via-api needs the user template@bench.example (finvision create-user) for its hash")
        ids, counts = load_via_api(a, password_hash, None)
        write_ids(a.out, ids)
        print(f"loaded in {time.time() - t0:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        return
    script, ids, counts = build(a.scale, a.seed, password_hash or PLACEHOLDER_HASH,
                                dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    if a.sql_only:
        sys.stdout.write(script)
        return
    run_psql(a.database_url, script)
    write_ids(a.out, ids)
    print(f"loaded in {time.time() - t0:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"ids written to {a.out}")


if __name__ == "__main__":
    main()
