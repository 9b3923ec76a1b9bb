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

Needs valgrind, pgbench and the PostgreSQL server binaries (Debian: valgrind, postgresql).
Takes about 8 minutes. Output: a Markdown table (also bench/out/rls_cost.md).
"""
import argparse, glob, os, pathlib, shutil, subprocess, sys, time

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
    args = ap.parse_args()
    n1, n2 = (int(x) for x in args.transactions.split(","))
    for tool in ("valgrind", "pgbench", "pg_dump", "pg_restore"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (apt-get install valgrind postgresql)")

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
            cmd = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--dump-instr=no",
                   f"--callgrind-out-file={work}/cg/cg.%p", *cmd]
        proc = subprocess.Popen(as_postgres(cmd), stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "a"))
        for _ in range(600):
            if subprocess.run(["psql", admin, "-XAtqc", "SELECT 1"], capture_output=True).returncode == 0:
                return proc
            time.sleep(0.2)
        sys.exit(f"the private cluster did not start: {work}/server.log")

    def stop(proc):
        proc.terminate()
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

    results = {}
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
    finally:
        stop(server)

    lines = ["| plans | query | RLS off | RLS on | cost |", "|---|---|---:|---:|---:|"]
    for generic in (True, False):
        for q in ("q1", "q2", "q3", "q4"):
            off, on = results[(q, False, generic)], results[(q, True, generic)]
            lines.append(f"| {'generic' if generic else 'custom'} | {q.upper()} | {off:,.0f} | {on:,.0f} | {100 * (on / off - 1):+.1f} % |")
    table = "\n".join(lines)
    print(table)
    (OUT / "rls_cost.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
