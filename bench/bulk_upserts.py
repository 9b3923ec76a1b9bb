#!/usr/bin/env python3
"""Memory under bulk writes: against a running server on a database loaded by run.sh (its
bench/out/ids.json), sign in N times (argon2, 19 MiB per hash), then let C clients each send R
upsertMetricValues calls of 10,000 values (the largest call allowed) to scenarios of their own on
a new 600-month, 17-metric model, and print the server's VmRSS before, at the peak, after, and
10 s later.

  bench/bulk_upserts.py --pid PID [--port 18080] [--logins 12] [--clients 16] [--rounds 4]
"""
import argparse, datetime as dt, http.client, json, os, random, sys, threading, time, uuid

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--pid", required=True, help="the server's process id (for /proc/PID/status)")
p.add_argument("--port", type=int, default=18080)
p.add_argument("--ids", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "ids.json"))
p.add_argument("--logins", type=int, default=12)
p.add_argument("--clients", type=int, default=16)
p.add_argument("--rounds", type=int, default=4)
p.add_argument("--password", default="bench-password")
a = p.parse_args()
org = json.load(open(a.ids))["organizations"][0]


def rss():
    with open(f"/proc/{a.pid}/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))


def call(conn, query, variables, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", "/graphql", json.dumps({"query": query, "variables": variables}), headers)
    data = json.loads(conn.getresponse().read())
    if data.get("errors"):
        sys.exit(f"API error: {data['errors']}")
    return data["data"]


conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
print(f"start: {rss()} MiB", flush=True)
for i in range(a.logins):  # users of the first organization (generate.py's numbering)
    call(conn, "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
         {"e": f"user{i % 100 + 1:05d}@bench.example", "p": a.password})
print(f"after {a.logins} logins: {rss()} MiB", flush=True)

token = org["tokens"][0]
model = call(conn, "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
             {"i": {"organizationId": org["id"], "name": f"bulk {uuid.uuid4().hex[:8]}", "currency": "USD",
                    "periodGranularity": "MONTH", "startPeriod": "2000-01-01", "endPeriod": "2049-12-01"}},
             token)["createModel"]["id"]
for k in range(17):
    call(conn, "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
         {"i": {"modelId": model, "key": f"m{k:02d}", "name": f"M{k:02d}", "unit": "CURRENCY", "kind": "INPUT"}}, token)
scenarios = [call(conn, "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
                  {"i": {"modelId": model, "name": f"S{c}", "kind": "CUSTOM"}}, token)["createScenario"]["id"]
             for c in range(a.clients)]
periods = [dt.date(2000 + m // 12, m % 12 + 1, 1).isoformat() for m in range(600)]
slots = [(f"m{k:02d}", p) for k in range(17) for p in periods][:10_000]


def client(c):
    rng, cc = random.Random(c), http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
    for _ in range(a.rounds):
        values = [{"metricKey": k, "period": p, "value": f"{rng.uniform(1000, 10000):.2f}"} for k, p in slots]
        call(cc, "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }",
             {"i": {"scenarioId": scenarios[c], "values": values}}, token)


before, t0, peak = rss(), time.time(), 0
threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    time.sleep(0.5)
    peak = max(peak, rss())
print(f"{a.clients} clients × {a.rounds} × 10,000 values in {time.time() - t0:.0f} s: "
      f"{before} MiB before, peak {peak} MiB, after {rss()} MiB", flush=True)
time.sleep(10)
print(f"10 s later: {rss()} MiB")
