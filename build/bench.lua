-- The requests of build/bench.sh for wrk: GET /products/<i>?x=1 with
-- x-user-id: user-<i> and x-internal-debug: 1 (which the policy removes),
-- i cycling over the first argument's number of users (prebuilt, so the
-- generator spends nothing per request). With "unique" as the second
-- argument every request carries a new user id instead, prefixed by the
-- third argument (the soak). done() prints one JSON line for the report.
-- BENCH_HEADERS in the environment adds that many x-extra-<n> headers of
-- 40-byte values to every request.
local reqs, users, i, unique, prefix = {}, 1000, 0, false, ""
local extra = {}
for h = 0, (tonumber(os.getenv("BENCH_HEADERS")) or 0) - 1 do
  extra["x-extra-" .. h] = string.rep(tostring(h % 10), 40)
end

local function headers(user)
  local hs = { ["x-user-id"] = user, ["x-internal-debug"] = "1" }
  for k, v in pairs(extra) do hs[k] = v end
  return hs
end

function init(args)
  users = tonumber(args[1]) or users
  unique = args[2] == "unique"
  prefix = args[3] or ""
  if not unique then
    for k = 0, users - 1 do
      reqs[k + 1] = wrk.format("GET", "/products/" .. k .. "?x=1", headers("user-" .. k))
    end
  end
end

function request()
  i = i + 1
  if unique then
    return wrk.format("GET", "/products/" .. i .. "?x=1", headers("user-" .. prefix .. "-" .. i))
  end
  if i > users then i = 1 end
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"status":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status))
end
