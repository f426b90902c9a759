-- Workload: GET /transactions?metadata[order_id]=X, the transactions of a random existing order
-- of a database built by bench/bulkload.py, whose orders are bulk-order-1 … bulk-order-N (one
-- transaction each). bench/lookup.py runs it with one connection.
--
-- Environment (besides common.lua's):
--   BENCH_ORDERS  N, how many orders the database holds (bulkload.py prints it)
-- Usage: BENCH_ORDERS=1666000 wrk -t1 -c1 -s bench/wrk/get_transactions_metadata.lua \
--            http://127.0.0.1:8000

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

local orders = tonumber(os.getenv("BENCH_ORDERS") or "")

setup = common.setup
response = common.response
done = common.done

function init(args)
   if not orders or orders < 1 then
      error("BENCH_ORDERS must name how many orders the database holds")
   end
   common.init()
end

function request()
   return wrk.format(
      "GET", string.format("/transactions?metadata%%5Border_id%%5D=bulk-order-%d", math.random(orders)))
end
