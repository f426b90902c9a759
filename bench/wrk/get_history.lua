-- Workload (c): GET /transaction/{user}/history?limit=20, the first page of a random user's
-- history (newest first).
-- Usage: wrk -s bench/wrk/get_history.lua http://127.0.0.1:8000

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

setup = common.setup
response = common.response
done = common.done

function init(args)
   common.init()
end

function request()
   return wrk.format("GET", string.format("/transaction/%s/history?limit=20", common.user()))
end
