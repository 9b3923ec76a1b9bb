#!/usr/bin/env bash
# The read-path benchmark in one command: fresh database `fv_bench`, release build if missing,
# migrate, generate, serve, wrk Q1-Q4 + mixed, pgbench floors, Markdown table.
#
#   bench/run.sh                 full scale (20 organizations), 3 s warm-up + 15 s per profile
#   bench/run.sh --quick         scale 0.05 (1 organization), 1 s warm-up + 5 s per profile
#
# Flags: --scale X, --duration S, --warmup S, --threads N, --connections N, --port P,
#        --profiles "q1 q2 q3 q4 mixed", --no-pgbench, --no-load (reuse fv_bench and ids.json),
#        --build (cargo build --release even if the binary exists), --via-api (load the dataset
#        through the server's GraphQL API instead of COPY: slower, real audit history),
#        --postgraphile (also run Q1-Q4 against PostGraphile 4 from npm on the same database,
#        on --postgraphile-port, default 18180), --database NAME (default fv_bench),
#        --rss-every N (sample the server's VmRSS every N s into bench/out/rss.tsv; report
#        first/last/max), --private (always use the private cluster below, even when a server
#        answers at DATABASE_URL), --standby (implies --private: also make a hot standby of it
#        with pg_basebackup -R in bench/out/standby, port 55433, and serve with
#        FV_DATABASE_REPLICA_URLS pointing at it, so that queries read from the standby).
# DATABASE_URL (any database on the server to use; default postgres://postgres@127.0.0.1:5432/postgres)
# names the server; the database (fv_bench) is dropped and created there. When no server answers, a private
# cluster is started in bench/out/pg (port 55432, pg_stat_statements preloaded) and stopped at exit.
# Results: stdout and bench/out/results.md; raw wrk/pgbench output in bench/out/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$HERE/out
mkdir -p "$OUT"

SCALE=1 DURATION=15 WARMUP=3 THREADS=2 CONNS=16 PORT=18080 PGBENCH=1 LOAD=1 BUILD=0 VIA_API=0 POSTGRAPHILE=0 PGL_PID= PGL_PORT=18180
PROFILES="q1 q2 q3 q4 mixed" SCALE_SET=0 DB_NAME=fv_bench RSS_EVERY=0 SAMPLER_PID=
PRIVATE=0 STANDBY=0 REPLICA_URL=
COMMAND="bench/run.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) DURATION=5 WARMUP=1; [ $SCALE_SET = 1 ] || SCALE=0.05 ;;
    --scale) SCALE=$2 SCALE_SET=1; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --port) PORT=$2; shift ;;
    --profiles) PROFILES=$2; shift ;;
    --no-pgbench) PGBENCH=0 ;;
    --no-load) LOAD=0 ;;
    --build) BUILD=1 ;;
    --via-api) VIA_API=1 ;;
    --postgraphile) POSTGRAPHILE=1 ;;
    --postgraphile-port) PGL_PORT=$2; shift ;;
    --database) DB_NAME=$2; shift ;;
    --rss-every) RSS_EVERY=$2; shift ;;
    --private) PRIVATE=1 ;;
    --standby) STANDBY=1 PRIVATE=1 ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
  shift
done
log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

# --- tools -----------------------------------------------------------------------------------
apt_install() {
  log "installing $* (Debian packages)"
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null
}
command -v wrk >/dev/null || apt_install wrk
# psql, pgbench, initdb/pg_ctl and pg_stat_statements all come with the server package.
ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || apt_install postgresql postgresql-client
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
export PATH="$PATH:$PGBIN"

# --- the database server ---------------------------------------------------------------------
ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PRIVATE_PG=0 AS=()
if [ "$PRIVATE" = 1 ] || ! psql "$ADMIN_URL" -XAtqc 'SELECT 1' >/dev/null 2>&1; then
  log "starting a private cluster in $OUT/pg"
  PGDATA=$OUT/pg
  AS=()  # initdb and postgres refuse to run as root: run them as the postgres account then
  if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); mkdir -p "$PGDATA"; chown postgres "$PGDATA" "$OUT"; fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    "${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
    printf "shared_preload_libraries = 'pg_stat_statements'\nmax_connections = 200\n" >> "$PGDATA/postgresql.conf"
  fi
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p 55432 -k $PGDATA -c listen_addresses=127.0.0.1" \
    -l "$PGDATA/server.log" -w start >/dev/null
  PRIVATE_PG=1
  ADMIN_URL=postgres://postgres@127.0.0.1:55432/postgres
fi
DB_URL=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$ADMIN_URL" "$DB_NAME")
SERVER_PID=
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "$PGL_PID" ] && kill "$PGL_PID" 2>/dev/null || true
  [ -f "$OUT/standby/postmaster.pid" ] && "${AS[@]}" "$PGBIN/pg_ctl" -D "$OUT/standby" -m fast stop >/dev/null 2>&1 || true
  [ $PRIVATE_PG = 1 ] && "${AS[@]}" "$PGBIN/pg_ctl" -D "$OUT/pg" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- the binary --------------------------------------------------------------------------------
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/finvision
if [ $BUILD = 1 ] || [ ! -x "$BIN" ]; then
  log "cargo build --release (target $TARGET)"
  (cd "$ROOT" && cargo build --release --quiet)
fi

start_server() {
  log "starting the server on 127.0.0.1:$PORT"
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then log "port $PORT is in use: pass --port"; exit 1; fi
  DATABASE_URL=${SERVE_URL:-$DB_URL} FV_MIGRATION_DATABASE_URL=$DB_URL FV_DATABASE_REPLICA_URLS=$REPLICA_URL FV_LISTEN=127.0.0.1:$PORT FV_LOG=warn \
    "$BIN" serve >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
  if [ "$RSS_EVERY" != 0 ]; then # seconds since start, VmRSS KiB, what was running
    echo start >"$OUT/rss.phase"; printf 't_s\trss_kib\tphase\n' >"$OUT/rss.tsv"
    (t0=$(date +%s); while kill -0 "$SERVER_PID" 2>/dev/null; do
       printf '%s\t%s\t%s\n' $(($(date +%s) - t0)) "$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")" \
         "$(cat "$OUT/rss.phase")" >>"$OUT/rss.tsv"
       sleep "$RSS_EVERY"; done) &
    SAMPLER_PID=$!
  fi
}
phase() { [ "$RSS_EVERY" = 0 ] || echo "$1" >"$OUT/rss.phase"; }

# --- data ----------------------------------------------------------------------------------------
if [ $LOAD = 1 ]; then
  log "fresh database $DB_NAME"
  psql "$ADMIN_URL" -XAtq -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" -c "CREATE DATABASE \"$DB_NAME\""
  DATABASE_URL=$DB_URL "$BIN" migrate >"$OUT/migrate.log" 2>&1
fi
# The server runs as the application role when the migrations grant to it (as in production: the
# owner migrates, `finvision_app` serves, under row-level security); older builds as the owner.
if [ "$(psql "$DB_URL" -XAtqc "SELECT count(*) > 0 FROM information_schema.role_table_grants WHERE grantee = 'finvision_app'")" = t ]; then
  psql "$DB_URL" -XAtqc "ALTER ROLE finvision_app LOGIN PASSWORD 'bench-app'" >/dev/null
  SERVE_URL=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); host = p.hostname + (":%d" % p.port if p.port else "")
print(u.urlunsplit((p.scheme, "finvision_app:bench-app@" + host, p.path, p.query, "")))' "$DB_URL")
  log "serving as finvision_app"
fi
if [ $LOAD = 1 ]; then
  # One real argon2id hash (password "bench-password") that every generated user shares.
  DATABASE_URL=$DB_URL FV_NEW_USER_PASSWORD=bench-password "$BIN" create-user \
    --email template@bench.example >"$OUT/create-user.log" 2>&1
  GEN=()
  if [ $VIA_API = 1 ]; then start_server; phase load; GEN=(--via-api "http://127.0.0.1:$PORT/graphql"); fi
  log "generate --scale $SCALE ${GEN[*]}"
  python3 "$HERE/generate.py" --database-url "$DB_URL" --scale "$SCALE" --out "$OUT/ids.json" "${GEN[@]}" >&2
  [ $VIA_API = 1 ] && log "server RSS after loading: $(awk '/^VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$SERVER_PID/status")"
fi
python3 "$HERE/queries.py" lua "$OUT/ids.json" "$OUT"
python3 "$HERE/queries.py" sql "$OUT"
PGSS=0
if [ "$(psql "$DB_URL" -XAtqc "SELECT count(*) FROM pg_settings WHERE name = 'shared_preload_libraries' AND setting LIKE '%pg_stat_statements%'")" = 1 ]; then
  psql "$DB_URL" -XAtqc 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' && PGSS=1
fi

# --- a hot standby (--standby) -----------------------------------------------------------------
if [ "$STANDBY" = 1 ]; then
  log "hot standby of the private cluster in $OUT/standby (port 55433)"
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$OUT/standby" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$OUT/standby"
  "${AS[@]}" "$PGBIN/pg_basebackup" -h 127.0.0.1 -p 55432 -U postgres -D "$OUT/standby" -R -X stream -c fast
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$OUT/standby" -o "-p 55433 -k $OUT/standby -c listen_addresses=127.0.0.1" \
    -l "$OUT/standby/server.log" -w start >/dev/null
  REPLICA_URL=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(netloc="postgres@127.0.0.1:55433")))' "$DB_URL")
  [ $PGSS = 1 ] && psql "$REPLICA_URL" -XAtqc 'SELECT pg_stat_statements_reset()' >/dev/null
  [ -n "$SERVER_PID" ] && { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
fi

# --- the server ------------------------------------------------------------------------------
[ -n "$SERVER_PID" ] || start_server

# Smoke test: every profile's first request answers without errors.
for p in $PROFILES; do
  [ "$p" = mixed ] && continue
  mapfile -t tb < <(python3 "$HERE/queries.py" body "$OUT/ids.json" "$p")
  body=$(curl -s -H 'content-type: application/json' -H "authorization: Bearer ${tb[0]}" \
    --data-binary "${tb[1]}" "http://127.0.0.1:$PORT/graphql")
  case $body in *'"errors"'*|'') log "$p fails: ${body:0:400}"; exit 1 ;; esac
  log "$p ok (${#body} bytes): ${body:0:120}..."
done

# The generated audit history is a valid chain (the generator hashes as the write path does).
tb0=$(python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))["organizations"][0]; print(o["tokens"][0], o["id"])' "$OUT/ids.json")
chain=$(curl -s -H 'content-type: application/json' -H "authorization: Bearer ${tb0% *}" \
  --data-binary "{\"query\":\"{ verifyAuditChain(organizationId: \\\"${tb0#* }\\\") { valid eventsChecked } }\"}" \
  "http://127.0.0.1:$PORT/graphql")
log "verifyAuditChain: $chain"
case $chain in *'"valid":true'*) ;; *) log "the generated audit chain does not verify"; exit 1 ;; esac

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
statements() { # FinVision's pool counter; n/a for PostGraphile
  case $1 in pg*) echo n/a ;; *) curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^fv_db_statements_total/ {print $2}' ;; esac
}
pgss_calls() { # on the primary, plus the standby's with --standby
  local url total=0
  for url in "$DB_URL" $REPLICA_URL; do
    total=$((total + $(psql "$url" -XAtqc "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$DB_NAME') AND query NOT LIKE '%pg_stat_statements%'
        AND query NOT LIKE '%pg_last_wal_replay_lsn%' AND query NOT LIKE '%pg_current_wal_lsn%'")))
  done
  echo "$total"
}
TCK=$(getconf CLK_TCK)
# CPU ticks of every backend connected to the benchmark database, one "pid ticks" line each (a
# server on this machine only: /proc; empty otherwise). The database's share of a request: what
# row-level security, plans and statements cost, apart from the API server's own CPU.
db_cpu() {
  local pid
  for pid in $(psql "$DB_URL" -XAtqc "SELECT pid FROM pg_stat_activity WHERE datname = '$DB_NAME' AND pid <> pg_backend_pid()" 2>/dev/null); do
    [ -r "/proc/$pid/stat" ] && echo "$pid $(cpu_ticks "$pid")"
  done
}

# measure PROFILE PORT PID: warm-up, then the measured wrk run against 127.0.0.1:PORT, with the
# CPU and RSS of process PID; appends a table row to ROWS. The statement counter is FinVision's.
measure() {
  local p=$1 port=$2 pid=$3 rss0 cpu0 st0 rss1 cpu1 st1 pg result
  export FV_REQS=$OUT/$p.reqs.lua
  phase "$p warm-up"
  log "$p: warm-up ${WARMUP}s"
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$HERE/wrk.lua" "http://127.0.0.1:$port/graphql" >/dev/null
  rss0=$(rss_kb "$pid") cpu0=$(cpu_ticks "$pid") st0=$(statements "$p")
  db_cpu >"$OUT/dbcpu0.txt"
  if [ $PGSS = 1 ]; then
    for url in "$DB_URL" $REPLICA_URL; do psql "$url" -XAtqc 'SELECT pg_stat_statements_reset()' >/dev/null; done
  fi
  phase "$p"
  log "$p: ${DURATION}s, $THREADS threads, $CONNS connections"
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$HERE/wrk.lua" \
    "http://127.0.0.1:$port/graphql" >"$OUT/wrk-$p.txt"
  cpu1=$(cpu_ticks "$pid") rss1=$(rss_kb "$pid") st1=$(statements "$p")
  db_cpu >"$OUT/dbcpu1.txt"
  pg=n/a; [ $PGSS = 1 ] && pg=$(pgss_calls)
  result=$(grep '^RESULT ' "$OUT/wrk-$p.txt" | cut -c8-)
  ROWS+=("$(python3 - "$p" "$result" "$cpu0" "$cpu1" "$TCK" "$rss0" "$rss1" "$st0" "$st1" "$pg" "$OUT" <<'PY'
import json, sys
p, r, cpu0, cpu1, tck, rss0, rss1, st0, st1, pg, out = sys.argv[1:]
def ticks(name):
    return dict(line.split() for line in open(f"{out}/{name}") if line.strip())
d0, d1 = ticks("dbcpu0.txt"), ticks("dbcpu1.txt")
r = json.loads(r)
n = max(r["requests"], 1)
rps = r["requests"] / (r["duration_us"] / 1e6)
cpu = (int(cpu1) - int(cpu0)) / int(tck) * 1e6 / n
# Backends that started during the run count from zero; none there before and after: n/a.
db = (f"{sum(int(t) - int(d0.get(pid, 0)) for pid, t in d1.items()) / int(tck) * 1e6 / n:,.0f}"
      if d1 else "n/a")
sql = "n/a" if st0 == "n/a" else f"{(float(st1) - float(st0)) / n:.1f}"
pgss = "n/a" if pg == "n/a" else f"{int(pg) / n:.1f}"
err = r["errors"] + r["socket_errors"]
name = f"PostGraphile Q{p[2:]}" if p.startswith("pg") else p.upper()
print(f"| {name} | {rps:,.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | {sql} | {pgss} "
      f"| {cpu:,.0f} | {db} | {int(rss0) / 1024:.0f} → {int(rss1) / 1024:.0f} | {err} |")
if err:
    print(f"{p}: {err} errors, first: {r['first_error']}", file=sys.stderr)
PY
)")
  log "${ROWS[-1]}"
}

ROWS=()
for p in $PROFILES; do measure "$p" "$PORT" "$SERVER_PID"; done
RSS_SUMMARY=
if [ "$RSS_EVERY" != 0 ]; then
  phase end; sleep 0.1
  RSS_SUMMARY=$(awk -F'\t' 'NR > 1 && $2 != "" && $3 != "load" && $3 != "start" {
      if (!n++) first = $2; last = $2; if ($2 > max) max = $2 }
    END { if (n) printf "Server RSS sampled every %s s over the measured profiles (bench/out/rss.tsv, %d samples): first %.0f MiB, last %.0f MiB, max %.0f MiB.", every, n, first / 1024, last / 1024, max / 1024 }' \
    every="$RSS_EVERY" "$OUT/rss.tsv")
  log "$RSS_SUMMARY"
fi

if [ $POSTGRAPHILE = 1 ]; then
  PGL=$OUT/postgraphile/node_modules/.bin/postgraphile
  if [ ! -x "$PGL" ]; then
    log "npm install postgraphile@4"
    npm install --silent --no-audit --no-fund --prefix "$OUT/postgraphile" postgraphile@4 >&2
  fi
  log "starting PostGraphile on 127.0.0.1:$PGL_PORT"
  "$PGL" -c "$DB_URL" --schema public --host 127.0.0.1 --port $PGL_PORT --disable-query-log \
    >"$OUT/postgraphile.log" 2>&1 &
  PGL_PID=$!
  for _ in $(seq 100); do
    kill -0 "$PGL_PID" 2>/dev/null || { tail -5 "$OUT/postgraphile.log" >&2; exit 1; }
    curl -fs -H 'content-type: application/json' --data '{"query":"{__typename}"}' \
      "http://127.0.0.1:$PGL_PORT/graphql" >/dev/null 2>&1 && break
    sleep 0.3
  done
  for p in $PROFILES; do
    case $p in q[1-4]) measure "pg${p#q}" $PGL_PORT "$PGL_PID" ;; esac
  done
fi

FLOOR=()
if [ $PGBENCH = 1 ]; then
  read -r NSCEN NORG < <(psql "$DB_URL" -XAtq -F ' ' -c 'SELECT (SELECT count(*) FROM bench.scenario_ids), (SELECT count(*) FROM bench.org_ids)')
  for q in q1 q2 q3 q4; do
    case " $PROFILES " in *" $q "*) ;; *) continue ;; esac
    log "pgbench $q: ${DURATION}s, $CONNS clients, $THREADS threads"
    rm -f "$OUT"/pgbench_log.*
    (cd "$OUT" && pgbench -n -M prepared -c "$CONNS" -j "$THREADS" -T "$DURATION" -D nscen="$NSCEN" -D norg="$NORG" \
      -l --log-prefix=pgbench_log -f "$OUT/$q.pgbench.sql" "$DB_URL" >"$OUT/pgbench-$q.txt" 2>&1)
    FLOOR+=("$(python3 - "$q" "$OUT" <<'PY'
import glob, re, sys
q, out = sys.argv[1:]
lat = sorted(int(line.split()[2]) for f in glob.glob(f"{out}/pgbench_log.*") for line in open(f))
text = open(f"{out}/pgbench-{q}.txt").read()
tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
pct = lambda x: lat[min(len(lat) - 1, int(len(lat) * x))] / 1000
print(f"| {q.upper()} (SQL floor) | {tps:,.0f} | {pct(0.5):.2f} | {pct(0.99):.2f} | 1.0 | 1.0 | n/a | n/a | n/a | 0 |")
PY
)")
    rm -f "$OUT"/pgbench_log.*
    log "${FLOOR[-1]}"
  done
fi

{
  echo "Scale $SCALE ($(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["organizations"]), "organizations,", len(d["scenarios"]), "scenarios")' "$OUT/ids.json")); wrk $THREADS threads, $CONNS connections, ${WARMUP}s warm-up + ${DURATION}s; $(nproc) cores; $(date -u +%F)."
  echo "Command: \`$COMMAND\` (commit $(cd "$ROOT" && git rev-parse --short HEAD))"
  echo
  echo "| Profile | req/s | p50 ms | p99 ms | SQL/req (pool) | SQL/req (pg_stat_statements) | server CPU µs/req | database CPU µs/req | server RSS MiB before → after | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
  printf '%s\n' "${ROWS[@]}" "${FLOOR[@]}"
  [ -z "$RSS_SUMMARY" ] || printf '\n%s\n' "$RSS_SUMMARY"
} | tee "$OUT/results.md"
