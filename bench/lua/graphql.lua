-- wrk script: POST GraphQL bodies read from a file, one JSON body per line, in turn.
--
--   wrk -t1 -c16 -d10s -s bench/lua/graphql.lua http://127.0.0.1:PORT/graphql -- BODIES [KEY]
--
-- Each thread starts at its own offset in the file. "__N__" in a body becomes a number unique
-- to this run (thread id and counter), so creates carry distinct emails. A response that is
-- not 200 or whose body holds a GraphQL "errors" member counts as an error. `done` prints one
-- JSON line (prefixed with RESULT) that bench.load reads. With BENCH_PORTS=P1,P2,... in the
-- environment, thread i sends to 127.0.0.1:P(i mod n) instead of the URL's port (several
-- server processes, one thread each).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  local ports = {}
  for port in (os.getenv("BENCH_PORTS") or ""):gmatch("%d+") do ports[#ports + 1] = port end
  if #ports > 0 then
    thread.addr = wrk.lookup("127.0.0.1", ports[next_id % #ports + 1])[1]
  end
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  local key = args[2]
  bodies = {}
  for line in io.lines(path) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  if #bodies == 0 then error("no bodies in " .. path) end
  position = (id * 7919) % #bodies
  counter = 0
  gql_errors = 0
  bad_status = 0
  first_error = ""
  headers = { ["Content-Type"] = "application/json" }
  if key ~= nil and #key > 0 then headers["Authorization"] = "Bearer " .. key end
end

function request()
  position = position % #bodies + 1
  local body = bodies[position]
  if body:find("__N__", 1, true) then
    counter = counter + 1
    body = body:gsub("__N__", id .. "x" .. counter)
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    if first_error == "" then first_error = "HTTP " .. status .. " " .. body:sub(1, 300) end
  elseif body:find('"errors"', 1, true) then
    gql_errors = gql_errors + 1
    if first_error == "" then first_error = body:sub(1, 300) end
  end
end

local function quote(s)
  return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('[%c]', ' ') .. '"'
end

function done(summary, latency, requests)
  local gql, status, sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    gql = gql + thread:get("gql_errors")
    status = status + thread:get("bad_status")
    local e = thread:get("first_error")
    if sample == "" and e ~= nil then sample = e end
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "socket_errors": %d, "timeouts": %d, ' ..
    '"http_errors": %d, "graphql_errors": %d, "first_error": %s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean,
    e.connect + e.read + e.write, e.timeout, status, gql, quote(sample)))
end
