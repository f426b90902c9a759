-- Shared by the workload scripts: thread set-up, seeded randomness, status counting, and a
-- machine-readable summary (with p99.9, which `wrk --latency` does not print).
--
-- Environment, set by bench/run.py:
--   BENCH_PORTS  comma-separated ports of the servers to load; the threads are spread over them
--                round-robin (default: the port of the URL given to wrk)
--   BENCH_USERS  number of users bench_00001 … (default 10000)
--   BENCH_SEED   base of every thread's random seed (default 1)
--   BENCH_NONCE  a word unique to this wrk run, to keep idempotency keys apart between runs
--                on the same database (default: the current time)

local common = {}

common.users = tonumber(os.getenv("BENCH_USERS") or "10000")
common.seed = tonumber(os.getenv("BENCH_SEED") or "1")
common.nonce = os.getenv("BENCH_NONCE") or tostring(os.time())

-- setup() runs in the main Lua state, once per thread, before the thread's init().
local threads = {}

function common.setup(thread)
   table.insert(threads, thread)
   local id = #threads
   thread:set("thread_id", id)
   local ports = os.getenv("BENCH_PORTS")
   if ports and ports ~= "" then
      local list = {}
      for port in ports:gmatch("[^,]+") do
         table.insert(list, port)
      end
      local port = list[(id - 1) % #list + 1]
      thread.addr = wrk.lookup(wrk.host, port)[1]
   end
end

-- Per thread (each has its own Lua state): seed the generator with the thread's id, so that a
-- run is random but repeatable.
function common.init()
   thread_id = wrk.thread:get("thread_id")
   math.randomseed(common.seed * 1000 + thread_id)
   statuses = {}
end

function common.user()
   return string.format("bench_%05d", math.random(common.users))
end

-- Pick a key of `weights` ({key = weight, …} given as a list of {key, weight} pairs).
function common.pick(weighted)
   local r = math.random()
   for _, choice in ipairs(weighted) do
      r = r - choice[2]
      if r <= 0 then
         return choice[1]
      end
   end
   return weighted[#weighted][1]
end

function common.response(status)
   statuses[status] = (statuses[status] or 0) + 1
end

local function json_value(value)
   if type(value) == "number" and (value ~= value or value == math.huge or value == -math.huge) then
      return "null"  -- no requests, no mean
   end
   return tostring(value)
end

local function json_object(values)
   local parts = {}
   for key, value in pairs(values) do
      table.insert(parts, string.format('"%s": %s', tostring(key), json_value(value)))
   end
   table.sort(parts)
   return "{" .. table.concat(parts, ", ") .. "}"
end

-- One line for bench/run.py to parse: counts, errors, status codes and latency percentiles in
-- microseconds.
function common.done(summary, latency)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses") or {}) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   local percentiles = {}
   for _, p in ipairs({50, 75, 90, 99, 99.9, 99.99}) do
      percentiles[string.format("%g", p)] = latency:percentile(p)
   end
   local errors = summary.errors
   io.write("BENCH_RESULT ", json_object({
      requests = summary.requests,
      duration_us = summary.duration,
      bytes = summary.bytes,
      errors = json_object({
         connect = errors.connect, read = errors.read, write = errors.write,
         status = errors.status, timeout = errors.timeout,
      }),
      statuses = json_object(totals),
      latency_us = json_object({
         min = latency.min, max = latency.max, mean = latency.mean, stdev = latency.stdev,
         percentiles = json_object(percentiles),
      }),
   }), "\n")
end

return common
