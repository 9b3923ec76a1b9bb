#!/usr/bin/env python3
"""The benchmark's GraphQL queries (Q1-Q4, mixed) and their one-statement SQL floors.

    bench/queries.py lua  <ids.json> <out-dir>   write <out-dir>/<profile>.reqs.lua for bench/wrk.lua
    bench/queries.py sql  <out-dir>             write <out-dir>/<q>.pgbench.sql for pgbench
    bench/queries.py body <ids.json> <q>        print one request (token, JSON body) for a smoke test

Every request carries the session token of an ADMIN of the organization it reads.
"""

import base64
import json
import os
import random
import sys

Q1 = "query Q1($id: ID!) { scenario(id: $id) { id name model { name organization { name } } } }"
Q2 = ("query Q2($slug: String!) { organization(slug: $slug) { id name models(first: 25) { nodes { id name status "
      "createdBy { displayName } scenarios { nodes { id name kind } } } } } }")
Q3 = "query Q3($id: ID!) { scenario(id: $id) { id name series { metric { key } points { period value } } } }"
Q4 = ("query Q4($orgId: ID!) { auditEvents(organizationId: $orgId, first: 100) { nodes { id action entityType "
      "createdAt actor { ... on User { displayName } } } } }")
W1 = ("mutation W1($input: UpsertMetricValuesInput!) { upsertMetricValues(input: $input) { upserted } }")

# The same reads against PostGraphile 4 over the same database (bench/run.sh --postgraphile): its
# generated names, raw uuids, no authentication (it connects as the database owner), no
# soft-delete filter; Q3 is the flat list of stored values (no base-scenario chain, no series
# grouping) and Q4 has no actor (audit_events.actor_user_id has no foreign key to follow).
PG = {
    "pg1": "query($id: UUID!) { scenarioById(id: $id) { id name financialModelByModelId { name "
           "organizationByOrganizationId { name } } } }",
    "pg2": "query($slug: String!) { allOrganizations(condition: {slug: $slug}) { nodes { id name "
           "financialModelsByOrganizationId(first: 25) { nodes { id name status userByCreatedBy { displayName } "
           "scenariosByModelId { nodes { id name kind } } } } } } }",
    "pg3": "query($id: UUID!) { scenarioById(id: $id) { id name metricValuesByScenarioId(orderBy: [METRIC_ID_ASC, PERIOD_ASC]) "
           "{ nodes { metricByMetricId { key } period value } } } }",
    "pg4": "query($orgId: UUID!) { allAuditEvents(condition: {organizationId: $orgId}, first: 100, orderBy: ID_ASC) "
           "{ nodes { id action entityType createdAt actorUserId } } }",
}


def raw_uuid(gid):
    """The uuid inside a global ID (src/api/relay.rs: base64url of `Kind:uuid`)."""
    return base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode().split(":", 1)[1]


# The single SQL statement that answers each query (same rows, JSON built in the database),
# the floor the API is compared with. :i picks a scenario / organization by position.
SQL = {
    "q1": """\\set i random(1, :nscen)
SELECT json_build_object('id', s.id, 'name', s.name, 'model', json_build_object('name', m.name,
         'organization', json_build_object('name', o.name)))
FROM bench.scenario_ids b JOIN scenarios s ON s.id = b.id
JOIN financial_models m ON m.id = s.model_id AND m.deleted_at IS NULL
JOIN organizations o ON o.id = m.organization_id AND o.deleted_at IS NULL
WHERE b.n = :i AND s.deleted_at IS NULL;
""",
    "q2": """\\set i random(1, :norg)
SELECT json_build_object('id', o.id, 'name', o.name, 'models', (
  SELECT coalesce(json_agg(x ORDER BY x.created_at, x.id), '[]') FROM (
    SELECT m.id, m.name, m.status, m.created_at,
           (SELECT u.display_name FROM users u WHERE u.id = m.created_by AND u.deleted_at IS NULL) AS created_by,
           (SELECT coalesce(json_agg(json_build_object('id', s.id, 'name', s.name, 'kind', s.kind) ORDER BY s.created_at, s.id), '[]')
              FROM scenarios s WHERE s.model_id = m.id AND s.deleted_at IS NULL) AS scenarios
    FROM financial_models m
    WHERE m.organization_id = o.id AND m.deleted_at IS NULL
    ORDER BY m.created_at, m.id LIMIT 25) x))
FROM bench.org_ids b JOIN organizations o ON o.slug = b.slug AND o.deleted_at IS NULL
WHERE b.n = :i;
""",
    "q3": """\\set i random(1, :nscen)
SELECT json_build_object('id', s.id, 'name', s.name, 'series', (
  SELECT json_agg(json_build_object('metric', json_build_object('key', m.key), 'points', (
           SELECT json_agg(json_build_object('period', v.period, 'value', v.value) ORDER BY v.period)
           FROM metric_values v WHERE v.scenario_id = s.id AND v.metric_id = m.id)) ORDER BY m.display_order, m.key)
  FROM metrics m WHERE m.model_id = s.model_id))
FROM bench.scenario_ids b JOIN scenarios s ON s.id = b.id
WHERE b.n = :i AND s.deleted_at IS NULL;
""",
    "q4": """\\set i random(1, :norg)
SELECT json_agg(json_build_object('id', e.id, 'action', e.action, 'entityType', e.entity_type,
         'createdAt', e.created_at, 'actor', json_build_object('displayName', u.display_name)) ORDER BY e.id)
FROM (SELECT * FROM audit_events WHERE organization_id = (SELECT id FROM bench.org_ids WHERE n = :i)
      ORDER BY id LIMIT 100) e
LEFT JOIN users u ON u.id = e.actor_user_id AND u.deleted_at IS NULL;
""",
}


def requests(ids, profile, rng):
    """(token, body) pairs of one profile."""
    orgs = ids["organizations"]

    def token(o):
        return rng.choice(orgs[o]["tokens"])

    def body(query, variables):
        return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))

    scen = ids["scenarios"]
    if profile == "q1":
        return [(token(s["org"]), body(Q1, {"id": s["id"]})) for s in scen]
    if profile == "q3":
        return [(token(s["org"]), body(Q3, {"id": s["id"]})) for s in scen]
    if profile == "q2":
        return [(token(o), body(Q2, {"slug": org["slug"]})) for o, org in enumerate(orgs) for _ in range(4)]
    if profile == "q4":
        return [(token(o), body(Q4, {"orgId": org["id"]})) for o, org in enumerate(orgs) for _ in range(4)]
    if profile in ("pg1", "pg3"):
        return [("", body(PG[profile], {"id": raw_uuid(s["id"])})) for s in scen]
    if profile == "pg2":
        return [("", body(PG[profile], {"slug": org["slug"]})) for org in orgs]
    if profile == "pg4":
        return [("", body(PG[profile], {"orgId": raw_uuid(org["id"])})) for org in orgs]
    if profile == "mixed":
        # 90 % reads (Q1 40 %, Q2 10 %, Q3 30 %, Q4 10 %), 10 % writes (one metric value upserted).
        out = []
        pools = {q: requests(ids, q, rng) for q in ("q1", "q2", "q3", "q4")}
        for _ in range(2000):
            r = rng.random()
            if r < 0.4:
                out.append(rng.choice(pools["q1"]))
            elif r < 0.5:
                out.append(rng.choice(pools["q2"]))
            elif r < 0.8:
                out.append(rng.choice(pools["q3"]))
            elif r < 0.9:
                out.append(rng.choice(pools["q4"]))
            else:
                s = rng.choice(scen)
                value = {"metricKey": f"input_{rng.randrange(1, 21):02d}",
                         "period": f"{2024 + rng.randrange(3)}-{rng.randrange(1, 13):02d}-01",
                         "value": f"{rng.uniform(1000, 10000):.2f}"}
                out.append((token(s["org"]), body(W1, {"input": {"scenarioId": s["id"], "values": [value]}})))
        return out
    raise SystemExit(f"unknown profile {profile}")


def lua_string(s):
    assert "]==]" not in s
    return "[==[" + s + "]==]"


def main():
    cmd = sys.argv[1]
    if cmd == "lua":
        ids = json.load(open(sys.argv[2]))
        os.makedirs(sys.argv[3], exist_ok=True)
        for profile in ("q1", "q2", "q3", "q4", "mixed", "pg1", "pg2", "pg3", "pg4"):
            rng = random.Random(7)
            reqs = requests(ids, profile, rng)
            rng.shuffle(reqs)
            with open(os.path.join(sys.argv[3], f"{profile}.reqs.lua"), "w") as f:
                f.write("return {\n")
                for tok, body in reqs:
                    f.write(f"{{{lua_string(tok)}, {lua_string(body)}}},\n")
                f.write("}\n")
    elif cmd == "sql":
        os.makedirs(sys.argv[2], exist_ok=True)
        for q, text in SQL.items():
            with open(os.path.join(sys.argv[2], f"{q}.pgbench.sql"), "w") as f:
                f.write(text)
    elif cmd == "body":
        ids = json.load(open(sys.argv[2]))
        tok, body = requests(ids, sys.argv[3], random.Random(1))[0]
        print(tok)
        print(body)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
