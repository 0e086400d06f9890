-- wrk script: POST precomputed, correctly signed Meta bodies, one file per wrk thread.
--   wrk -t2 -c32 -d30s -s bench/wrk/signed.lua http://127.0.0.1:18700 -- <prefix> <path>
-- Each line of <prefix>.<thread>.tsv is "<updates>\t<X-Hub-Signature-256>\t<body>". Lines are
-- sent in order (bodies were signed beforehand: LuaJIT has no HMAC and signing here would
-- steal CPU from the server on a 2-core machine). If a file runs out it starts over, and the
-- run reports it (the repeats would only measure the dedup path). With <prefix> "GET" it
-- sends GET <path> instead: the bare-view ceiling through the same Lua and connections.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

function init(args)
  local prefix, path = args[1], args[2] or "/webhook/messages"
  reqs, counts = {}, {}
  i, sent, ok, bad, updates, wrapped = 0, 0, 0, 0, 0, 0
  if prefix == "GET" then
    -- The ceiling: a bare view through the same middleware, server and connections.
    get_request = wrk.format("GET", path)
    return
  end
  for line in io.lines(prefix .. "." .. id .. ".tsv") do
    local n, sig, body = line:match("^(%d+)\t([^\t]+)\t(.*)$")
    reqs[#reqs + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["X-Hub-Signature-256"] = sig,
    }, body)
    counts[#counts + 1] = tonumber(n)
  end
end

function request()
  sent = sent + 1
  if get_request then return get_request end
  i = i + 1
  if i > #reqs then
    i = 1
    wrapped = wrapped + 1
  end
  updates = updates + counts[i]
  return reqs[i]
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local per_thread = {}
  local t_sent, t_ok, t_bad, t_updates, t_wrapped = 0, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    local s, o, b = thread:get("sent"), thread:get("ok"), thread:get("bad")
    t_sent, t_ok, t_bad = t_sent + s, t_ok + o, t_bad + b
    t_updates = t_updates + thread:get("updates")
    t_wrapped = t_wrapped + thread:get("wrapped")
    per_thread[#per_thread + 1] = string.format('"%d": %d', thread:get("id"), s)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "sent": %d, "ok": %d, "non200": %d, "updates_sent": %d, '
      .. '"wrapped": %d, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, '
      .. '"latency_ms": {"p50": %.2f, "p90": %.2f, "p95": %.2f, "p99": %.2f, "max": %.2f, "mean": %.2f}, '
      .. '"sent_per_thread": {%s}}\n',
    summary.duration, summary.requests, t_sent, t_ok, t_bad, t_updates, t_wrapped,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    table.concat(per_thread, ", ")))
end
