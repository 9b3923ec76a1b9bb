#!/usr/bin/env python3
"""Times the costly-formula attack against a running server: register, create an organization, a
model (36 months) and a scenario, define `min(sum(p,9),…)` with N arguments (under 1 MiB), then
ask for the scenario's series under 100 aliases.
    bench/hostile_formula.py http://127.0.0.1:8080/graphql [N]
Prints the status and wall time of each step; a refused formula ends the run there."""
import json, sys, time, urllib.request, uuid

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/graphql"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 90_000


def gql(query, variables=None, token=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(URL, data=body, headers={"content-type": "application/json"})
    if token:
        req.add_header("authorization", f"Bearer {token}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=900) as res:
            out = json.load(res)
    except urllib.error.HTTPError as err:
        out = json.load(err)
    return out, time.monotonic() - started


def data(out, field):
    if out.get("errors"):
        raise SystemExit(f"{field}: {out['errors'][0]}")
    return out["data"][field]


tag = uuid.uuid4().hex[:8]
out, _ = gql("mutation($i: RegisterInput!) { register(input: $i) { token } }",
             {"i": {"email": f"attacker-{tag}@example.com", "password": "correct horse battery",
                    "displayName": "attacker"}})
token = data(out, "register")["token"]
out, _ = gql("mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
             {"i": {"name": f"a-{tag}", "slug": f"a-{tag}"}}, token)
org = data(out, "createOrganization")["id"]
out, _ = gql("mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
             {"i": {"organizationId": org, "name": "m", "currency": "USD",
                    "startPeriod": "2026-01-01", "endPeriod": "2028-12-01"}}, token)
model = data(out, "createModel")["id"]
out, _ = gql("mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
             {"i": {"modelId": model, "name": "s", "kind": "CUSTOM"}}, token)
scenario = data(out, "createScenario")["id"]
gql("mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
    {"i": {"modelId": model, "key": "p", "name": "p", "unit": "NUMBER", "kind": "INPUT"}}, token)

formula = "min(" + ",".join(["sum(p,9)"] * N) + ")"
out, took = gql("mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
                {"i": {"modelId": model, "key": "x", "name": "x", "unit": "NUMBER",
                       "kind": "DERIVED", "formula": formula}}, token)
code = (out.get("errors") or [{}])[0].get("extensions", {}).get("code", "ok")
msg = (out.get("errors") or [{}])[0].get("message", "")[:90]
print(f"defineMetric with {N} arguments ({len(formula)} chars): {code} in {took:.3f} s {msg}")
if code != "ok":
    sys.exit(0)
aliases = " ".join(f"a{i}: series(metricKeys: [\"x\"]) {{ points {{ value }} }}" for i in range(100))
out, took = gql(f"query($id: ID!) {{ scenario(id: $id) {{ {aliases} }} }}", {"id": scenario}, token)
code = (out.get("errors") or [{}])[0].get("extensions", {}).get("code", "ok")
print(f"100 aliases of series: {code} in {took:.3f} s")
