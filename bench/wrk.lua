-- wrk script: POST pre-built GraphQL requests to /graphql, chosen at random per request.
-- The requests come from FV_REQS (a Lua file returning {{token, body}, ...}, written by
-- bench/queries.py). A response is an error when its status is not 200 or its body has
-- "errors". done() prints one JSON line (prefixed RESULT) that bench/run.sh parses.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local reqs = {}
local errors = 0
local first_error = nil

function init(args)
  local list = dofile(os.getenv("FV_REQS"))
  for i, r in ipairs(list) do
    local headers = { ["Content-Type"] = "application/json" }
    if r[1] ~= "" then headers["Authorization"] = "Bearer " .. r[1] end
    reqs[i] = wrk.format("POST", "/graphql", headers, r[2])
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
  return reqs[math.random(#reqs)]
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    if first_error == nil then first_error = status .. " " .. string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local errs, sample = 0, ""
  for _, t in ipairs(threads) do
    errs = errs + (t:get("errors") or 0)
    local fe = t:get("first_error")
    if fe and sample == "" then sample = fe end
  end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, "errors": %d, "socket_errors": %d, "first_error": "%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean, errs,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status,
    (sample:gsub('[%c"\\]', ' '))))
end
