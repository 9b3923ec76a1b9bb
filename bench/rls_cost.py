#!/usr/bin/env python3
"""What row-level security costs the database, in instructions (callgrind): repeatable to a
fraction of a percent whatever else the machine does, where wall-clock figures on a shared
2-core machine swing by 2x.

It copies a loaded benchmark database (`bench/run.sh` leaves `fv_bench`) into a private cluster
whose postmaster runs under `valgrind --tool=callgrind` (every backend is then counted), and runs
each read-path request's SQL (bench/rls/q1-q4.sql: the statements the server sends for Q1-Q4,
each after the caller's settings, as the server sends them) through pgbench as `finvision_app`,
with row-level security enabled and disabled on every tenant table, with generic plans (as the
server's connections keep them) and custom ones (PostgreSQL's default). A request's cost is
(I(n2) - I(n1)) / (n2 - n1) for two runs of n1 and n2 transactions, so connection set-up and the
first executions' planning cancel out.

    bench/rls_cost.py [--database-url postgres://postgres@127.0.0.1:5432/fv_bench]

With --api, it then counts the rest of a request: the server (target/release/finvision) runs
under callgrind too, against the same private cluster as `finvision_app`, and answers the
benchmark's GraphQL queries Q1-Q4 (bench/queries.py, with the tokens of bench/run.sh's
ids.json). A request costs the server's instructions plus the database's for its statements
(the generic-plan figures above), with row-level security off and on: the policies' share of
what a request costs the machine, which is what the benchmark's req/s show.

Needs valgrind, pgbench and the PostgreSQL server binaries (Debian: valgrind, postgresql).
Takes about 8 minutes, 17 with --api. Output: Markdown tables (also
bench/out/rls_cost.md).
"""
import argparse, glob, http.client, json, os, pathlib, random, shutil, signal, subprocess, sys, time

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "out"
NIL = "00000000-0000-0000-0000-000000000000"


def pg_bin():
    found = shutil.which("initdb")
    if found:
        return pathlib.Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        sys.exit("no PostgreSQL server binaries (apt-get install postgresql)")
    return pathlib.Path(candidates[-1]).parent


def as_postgres(cmd):
    """Run the server's own binaries as `postgres` when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def psql(url, sql, *extra):
    return subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/fv_bench")
    ap.add_argument("--port", type=int, default=55490)
    ap.add_argument("--transactions", default="20,120", help="n1,n2")
    ap.add_argument("--api", action="store_true", help="also whole requests through the server")
    ap.add_argument("--ids", default=str(OUT / "ids.json"), help="bench/generate.py's ids (tokens)")
    ap.add_argument("--bin", default=str(HERE.parent / "target" / "release" / "finvision"))
    ap.add_argument("--requests", default="20,200", help="warm-up,counted for --api")
    args = ap.parse_args()
    n1, n2 = (int(x) for x in args.transactions.split(","))
    for tool in ("valgrind", "pgbench", "pg_dump", "pg_restore"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (apt-get install valgrind postgresql)")
    if args.api and not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin} is missing (cargo build --release)")
    if args.api and not os.path.exists(args.ids):
        sys.exit(f"{args.ids} is missing (bench/generate.py --out, or bench/run.sh, writes it)")

    src = args.database_url
    org = psql(src, "SELECT id FROM organizations ORDER BY slug LIMIT 1")
    ids = {
        "org": org,
        "user": psql(src, f"SELECT user_id FROM memberships WHERE organization_id = '{org}' AND role = 'OWNER' LIMIT 1"),
        "scen": psql(src, f"SELECT s.id FROM scenarios s JOIN financial_models m ON m.id = s.model_id WHERE m.organization_id = '{org}' AND s.base_scenario_id IS NULL ORDER BY s.created_at, s.id LIMIT 1"),
        "models": psql(src, f"SELECT string_agg(id::text, ',' ORDER BY created_at, id) FROM (SELECT id, created_at FROM financial_models WHERE organization_id = '{org}' ORDER BY created_at, id LIMIT 25) m"),
        "users": psql(src, f"SELECT string_agg(DISTINCT created_by::text, ',') FROM financial_models WHERE organization_id = '{org}'"),
        "slug": psql(src, f"SELECT slug FROM organizations WHERE id = '{org}'"),
    }
    ids["scenmodel"] = psql(src, f"SELECT model_id FROM scenarios WHERE id = '{ids['scen']}'")
    variables = {
        "caller": f"u:{ids['user']}:{org}", "fvorg": org, "orgs": f"{{{org}}}",
        "scens": f"{{{ids['scen']}}}", "scenmodel": f"{{{ids['scenmodel']}}}",
        "models": f"{{{ids['models']}}}", "users": f"{{{ids['users']}}}",
        "org": org, "slugs": f"{{{ids['slug']}}}",
    }
    defines = [x for k, v in variables.items() for x in ("-D", f"{k}={v}")]

    bindir = pg_bin()
    work = OUT / "rls-cost"
    shutil.rmtree(work, ignore_errors=True)
    (work / "cg").mkdir(parents=True)
    data, sock = work / "pg", work / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(work, "postgres"); shutil.chown(work / "cg", "postgres"); shutil.chown(sock, "postgres")
    subprocess.run(as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    admin = f"postgresql://postgres@/postgres?host={sock}&port={args.port}"
    db = f"postgresql://postgres@/fv_bench?host={sock}&port={args.port}"
    app = f"postgresql://finvision_app@/fv_bench?host={sock}&port={args.port}"

    def start(under_valgrind):
        cmd = [str(bindir / "postgres"), "-D", str(data), "-p", str(args.port), "-k", str(sock), "-c", "jit=off", "-c", "autovacuum=off"]
        if under_valgrind:
            # No LOGNAME/USER/HOST: vgdb (callgrind_control, --api) names its pipes after them,
            # and `runuser` would set them to another user's than ours.
            cmd = ["env", "-u", "LOGNAME", "-u", "USER", "-u", "HOST",
                   "valgrind", "--tool=callgrind", "--trace-children=yes", "--dump-instr=no",
                   f"--callgrind-out-file={work}/cg/cg.%p", *cmd]
        proc = subprocess.Popen(as_postgres(cmd), stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "a"))
        for _ in range(600):
            if subprocess.run(["psql", admin, "-XAtqc", "SELECT 1"], capture_output=True).returncode == 0:
                return proc
            time.sleep(0.2)
        sys.exit(f"the private cluster did not start: {work}/server.log")

    def stop(proc):
        # A fast shutdown (it does not wait for clients), sent to the postmaster itself: `runuser`
        # passes SIGTERM on, which asks for a smart one, and not SIGINT.
        subprocess.run(as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       check=True, capture_output=True)
        proc.wait()

    server = start(False)
    roles = subprocess.run(["pg_dumpall", "-d", src, "--roles-only"], check=True, capture_output=True, text=True).stdout
    subprocess.run(["psql", admin, "-Xq"], input=roles, capture_output=True, text=True)
    psql(admin, "CREATE DATABASE fv_bench")
    dump = subprocess.run(["pg_dump", "-Fc", src], check=True, capture_output=True).stdout
    subprocess.run(["pg_restore", "-d", db], input=dump, check=True, capture_output=True)
    # Hint bits, the visibility map and statistics settle now, not during the counted runs
    # (autovacuum is off: nothing changes the plans or the pages in between).
    psql(db, "VACUUM (ANALYZE)")
    tables = psql(db, "SELECT string_agg(relname, ' ') FROM pg_class WHERE relrowsecurity AND relkind IN ('r', 'p')").split()
    stop(server)
    server = start(True)

    def total(path):
        with open(path) as f:
            for line in f:
                if line.startswith(("totals:", "summary:")):
                    return int(line.split()[1])
        return None

    def instructions(script, n, generic):
        before = set(glob.glob(f"{work}/cg/cg.*"))
        env = dict(os.environ, PGOPTIONS="-c plan_cache_mode=" + ("force_generic_plan" if generic else "auto"))
        run = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", "1", "-t", str(n), "-f", str(script), *defines, app],
                             capture_output=True, text=True, env=env)
        if f"processed: {n}" not in run.stdout:
            sys.exit(run.stdout + run.stderr)
        for _ in range(300):  # each backend writes its counts when it exits
            new = set(glob.glob(f"{work}/cg/cg.*")) - before
            counts = [total(p) for p in new]
            if len(new) >= 2 and None not in counts:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        new = set(glob.glob(f"{work}/cg/cg.*")) - before
        counts = [total(p) or 0 for p in new]
        for p in new:
            os.remove(p)
        return max(counts)

    def through_api(profile, warm, n):
        """The server's instructions per request, answering one profile's first request of
        bench/queries.py's list: a server under callgrind answers `warm` of them, then its
        counters are zeroed, it answers `n` more, and they are dumped (callgrind_control), so
        that start-up and caches count for nothing. What its requests cost the database is what
        the same statements cost through pgbench above (bench/rls/*.sql are those statements)."""
        sys.path.insert(0, str(HERE))
        import queries
        token, body = queries.requests(json.load(open(args.ids)), profile, random.Random(1))[0]
        api_dir = work / "api"
        shutil.rmtree(api_dir, ignore_errors=True)
        api_dir.mkdir()
        port = args.port + 1
        env = dict(os.environ, FV_LISTEN=f"127.0.0.1:{port}", FV_LOG="warn",
                   DATABASE_URL=f"postgresql://finvision_app@127.0.0.1:{args.port}/fv_bench",
                   FV_MIGRATION_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{args.port}/fv_bench",
                   FV_DATA_DIR=str(api_dir / "data"))
        for k in ("LOGNAME", "USER", "HOST"):
            env.pop(k, None)
        server = subprocess.Popen(["valgrind", "--tool=callgrind", "--dump-instr=no",
                                   f"--callgrind-out-file={api_dir}/server.cg", args.bin, "serve"],
                                  env=env, cwd=api_dir, stdout=subprocess.DEVNULL,
                                  stderr=open(api_dir / "server.log", "w"))

        def ask(conn, count):
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            for _ in range(count):
                conn.request("POST", "/graphql", body=body, headers=headers)
                answer = json.loads(conn.getresponse().read())
                if answer.get("errors") or not answer.get("data"):
                    sys.exit(f"{profile}: {answer}")

        def control(flag, pids):
            """Zero (-z) or dump (-d) the counters of `pids`. A process blocked in a system
            call takes the command when it next wakes (vgdb may not interrupt it: no ptrace in
            a container), so one request is sent to wake the server; the counts are off by a
            fraction of that request at either end, and divided by n + 1."""
            env = {k: v for k, v in os.environ.items() if k not in ("LOGNAME", "USER", "HOST")}
            running = [subprocess.Popen(["callgrind_control", flag, str(pid)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for pid in pids]
            time.sleep(1)
            ask(conn, 1)
            for proc in running:
                if proc.wait(timeout=120) != 0:
                    sys.exit(f"callgrind_control {flag} failed")

        try:
            for _ in range(1200):
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    c.request("GET", "/healthz")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    time.sleep(0.25)
            else:
                sys.exit(f"the server did not start: {api_dir}/server.log")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            ask(conn, warm)
            before = set(glob.glob(f"{api_dir}/server.cg*"))
            control("-z", [server.pid])
            ask(conn, n)
            control("-d", [server.pid])
            conn.close()
            server_total = sum(total(p) or 0 for p in set(glob.glob(f"{api_dir}/server.cg*")) - before)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
        return server_total / (n + 1)

    results, api = {}, {}
    try:
        for q in ("q1", "q2", "q3", "q4"):  # a first pass, not counted: caches and free space
            instructions(HERE / "rls" / f"{q}.sql", n1, True)
        for rls in (False, True):
            psql(db, " ".join(f"ALTER TABLE {t} {'ENABLE' if rls else 'DISABLE'} ROW LEVEL SECURITY;" for t in tables))
            for generic in (True, False):
                for q in ("q1", "q2", "q3", "q4"):
                    script = HERE / "rls" / f"{q}.sql"
                    a, b = instructions(script, n1, generic), instructions(script, n2, generic)
                    results[(q, rls, generic)] = (b - a) / (n2 - n1)
                    print(f"{q} rls={'on' if rls else 'off'} {'generic' if generic else 'custom'}: "
                          f"{results[(q, rls, generic)]:,.0f} instructions", file=sys.stderr)
        if args.api:  # row-level security is on again
            a1, a2 = (int(x) for x in args.requests.split(","))
            for q in ("q1", "q2", "q3", "q4"):
                api[q] = through_api(q, a1, a2)
                print(f"{q} through the API: server {api[q]:,.0f} instructions", file=sys.stderr)
    finally:
        stop(server)

    tables_md = []
    if results:
        lines = ["| plans | query | RLS off | RLS on | cost |", "|---|---|---:|---:|---:|"]
        for generic in (True, False):
            for q in ("q1", "q2", "q3", "q4"):
                off, on = results[(q, False, generic)], results[(q, True, generic)]
                lines.append(f"| {'generic' if generic else 'custom'} | {q.upper()} | {off:,.0f} | {on:,.0f} | {100 * (on / off - 1):+.1f} % |")
        tables_md.append("\n".join(lines))
    if api:
        lines = ["| query | server | database, RLS off | database, RLS on | request, RLS off | request, RLS on | cost |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for q in ("q1", "q2", "q3", "q4"):
            d_off, d_on = results[(q, False, True)], results[(q, True, True)]
            off, on = api[q] + d_off, api[q] + d_on
            lines.append(f"| {q.upper()} | {api[q]:,.0f} | {d_off:,.0f} | {d_on:,.0f} | {off:,.0f} | {on:,.0f} | {100 * (on / off - 1):+.1f} % |")
        tables_md.append("\n".join(lines))
    table = "\n\n".join(tables_md)
    print(table)
    (OUT / "rls_cost.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
