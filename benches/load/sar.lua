-- wrk script: POSTs SubjectAccessReviews to /authorize, drawn in turn from
-- a pool of distinct bodies (one JSON a line; benches/load/gen_sars.py).
-- Each thread starts at its own offset, so the threads do not ask the same
-- questions in lockstep. At the end it prints one RESULT line that
-- scripts/load.sh and scripts/soak.sh parse.
--
--   SAR_POOL=sars.jsonl wrk -t2 -c32 -d15s -s benches/load/sar.lua https://127.0.0.1:PORT/authorize

local pool_path = os.getenv("SAR_POOL") or "sars.jsonl"
local pool = {}
for line in io.lines(pool_path) do
  if #line > 0 then
    pool[#pool + 1] = line
  end
end
if #pool == 0 then
  error("empty SAR pool: " .. pool_path)
end

local headers = { ["Content-Type"] = "application/json" }
local next_index = 1
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("start", thread_count * 7919)
end

function init(args)
  next_index = ((start or 0) % #pool) + 1
end

function request()
  local body = pool[next_index]
  next_index = (next_index % #pool) + 1
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT pool=%d requests=%d seconds=%.1f rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    #pool, summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
