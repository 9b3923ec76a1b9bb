#!/usr/bin/env bash
# Times the worst hostile requests against a running server: a fragment chain (F levels, each
# doubling the naive expansion) and nested introspection (L levels of possibleTypes/interfaces).
#   bench/hostile.sh http://127.0.0.1:8080/graphql [fragment levels...] 
# Prints, per attack: HTTP status, response bytes, wall time (curl's time_total).
set -euo pipefail
URL=${1:-http://127.0.0.1:8080/graphql}
shift || true
LEVELS=${*:-"16 20 22 30"}

post() { # $1 = JSON body file
  curl -s -o /tmp/fv-hostile-out -w '%{http_code} %{size_download} %{time_total}' \
    -H 'content-type: application/json' --data-binary @"$1" --max-time 900 "$URL" || echo "curl-failed"
}

for n in $LEVELS; do
  python3 - "$n" > /tmp/fv-hostile-body <<'PY'
import json, sys
n = int(sys.argv[1])
doc = ["fragment F0 on Query { __typename }"]
doc += [f"fragment F{i} on Query {{ ...F{i-1} ...F{i-1} }}" for i in range(1, n + 1)]
doc.append(f"query {{ ...F{n} }}")
print(json.dumps({"query": "\n".join(doc)}))
PY
  printf 'fragment chain %2d levels: status bytes seconds = %s\n' "$n" "$(post /tmp/fv-hostile-body)"
done

for n in 3 4 5 10; do
  python3 - "$n" > /tmp/fv-hostile-body <<'PY'
import json, sys
n = int(sys.argv[1])
inner = "name"
for i in range(n):
    inner = ("possibleTypes" if i % 2 == 0 else "interfaces") + " { name " + inner + " }"
print(json.dumps({"query": "{ __schema { types { " + inner + " } } }"}))
PY
  printf 'nested introspection %2d levels: status bytes seconds = %s\n' "$n" "$(post /tmp/fv-hostile-body)"
done
