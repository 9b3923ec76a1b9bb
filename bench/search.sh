#!/usr/bin/env bash
# Search latency: the benchmark dataset (bench/generate.py) with searchable names and
# descriptions laid over it (bench/search_text.sql), then ten realistic queries through the
# statement `search` sends (`fv_search`), as the application role `finvision_app` in an ADMIN's
# context (`fv.caller`), each --runs times by pgbench on one connection; p50/p99 per query.
#
#   bench/search.sh                  full scale: 20 organizations, 500 models, 2,000 scenarios,
#                                    10,000 metrics, 4,000 parameters
#   bench/search.sh --scale 0.05 --runs 200
#
# Flags: --scale X (default 1), --runs N (default 500), --database NAME (default fv_search_bench),
# --no-load (reuse the database). DATABASE_URL names the server and a superuser (default
# postgres://postgres@127.0.0.1:5432/postgres); the database is dropped and created there and
# migrated with psql. It measures the database's side only: what the API adds is the same as for
# any other query (bench/run.sh measures that).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$HERE/out
mkdir -p "$OUT"

SCALE=1 RUNS=500 DB_NAME=fv_search_bench LOAD=1
while [ $# -gt 0 ]; do
  case $1 in
    --scale) SCALE=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --database) DB_NAME=$2; shift ;;
    --no-load) LOAD=0 ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
  shift
done
SERVER=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL=${SERVER%/*}/$DB_NAME
log() { printf '[search-bench %s] %s\n' "$(date +%T)" "$*" >&2; }

if [ "$LOAD" = 1 ]; then
  log "database $DB_NAME: create, migrate, generate (scale $SCALE), add search text"
  psql -q "$SERVER" -c "DROP DATABASE IF EXISTS $DB_NAME" -c "CREATE DATABASE $DB_NAME" >/dev/null
  # Diesel's bookkeeping table, as `finvision migrate` leaves it (a migration grants on it).
  psql -q -v ON_ERROR_STOP=1 "$DB_URL" -c "CREATE TABLE __diesel_schema_migrations (
    version varchar(50) PRIMARY KEY NOT NULL, run_on timestamp NOT NULL DEFAULT current_timestamp)" >/dev/null
  for up in "$ROOT"/migrations/*/up.sql; do
    psql -q -v ON_ERROR_STOP=1 "$DB_URL" -f "$up" >/dev/null
    version=$(basename "$(dirname "$up")"); version=${version%%_*}; version=${version//-/}
    psql -q "$DB_URL" -c "INSERT INTO __diesel_schema_migrations (version) VALUES ('$version')" >/dev/null
  done
  python3 "$HERE/generate.py" --database-url "$DB_URL" --scale "$SCALE" --out "$OUT/search-ids.json" >&2
  psql -q -v ON_ERROR_STOP=1 "$DB_URL" -f "$HERE/search_text.sql" >/dev/null
fi

ORG=$(psql -At "$DB_URL" -c "SELECT id FROM organizations WHERE slug = 'bench-org-01'")
ADMIN=$(psql -At "$DB_URL" -c "SELECT user_id FROM memberships WHERE organization_id = '$ORG' AND role = 'ADMIN' ORDER BY user_id LIMIT 1")
COUNTS=$(psql -At -F' ' "$DB_URL" -c "SELECT (SELECT count(*) FROM financial_models), (SELECT count(*) FROM scenarios), (SELECT count(*) FROM metrics), (SELECT count(*) FROM parameters)")
log "rows (models scenarios metrics parameters): $COUNTS"

QUERIES=(
  "revenue"
  "downside hiring"
  "donwside"
  "churn"
  "gross margin"
  "headcount plan"
  "emea saas"
  "price increase 5%"
  "ebitda"
  "marketng spend"
)

printf '| query | hits | p50 ms | p99 ms |\n|---|---:|---:|---:|\n'
for q in "${QUERIES[@]}"; do
  quoted=${q//\'/\'\'}
  sql="SELECT count(*) FROM fv_search('$ORG', '$quoted', ARRAY['MODEL','SCENARIO','METRIC','PARAMETER'], 20);"
  script=$OUT/search-query.sql
  printf '%s\n' "$sql" >"$script"
  hits=$(PGOPTIONS="-c role=finvision_app -c fv.caller=u:$ADMIN" psql -At "$DB_URL" -f "$script")
  rm -f "$OUT"/search-log*
  PGOPTIONS="-c role=finvision_app -c fv.caller=u:$ADMIN" \
    pgbench -n -c 1 -t "$RUNS" -f "$script" -l --log-prefix="$OUT/search-log" "$DB_URL" >/dev/null 2>&1
  # pgbench's per-transaction log: the third column is the latency in microseconds.
  read -r p50 p99 < <(cat "$OUT"/search-log* | awk '{print $3}' | sort -n | awk '
    { v[NR] = $1 } END { i50 = int(NR * 0.50); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1;
      printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }')
  printf '| `%s` | %s | %s | %s |\n' "$q" "$hits" "$p50" "$p99"
done
rm -f "$OUT"/search-log* "$OUT/search-query.sql"
