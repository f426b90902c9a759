-- Workload (b): GET /balance/{user}/{asset} for a random user of the 10,000 and a random asset
-- (every user holds GC from its opening top-up; DI and LP only once the write mix credited them,
-- else the answer is a zero balance).
-- Usage: wrk -s bench/wrk/get_balance.lua http://127.0.0.1:8000

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

local ASSETS = {"GC", "DI", "LP"}

setup = common.setup
response = common.response
done = common.done

function init(args)
   common.init()
end

function request()
   local path = string.format("/balance/%s/%s", common.user(), ASSETS[math.random(#ASSETS)])
   return wrk.format("GET", path)
end
