-- Workload (a) with metadata: the POST mix of post_transaction.lua, every third new body
-- carrying {"order_id": <unique>, "store": "ios|android|web"}; otherwise, for a seed, the same
-- requests in the same order (bench/compare.py --workloads post_transaction,
-- post_transaction_metadata measures the two interleaved).
-- Usage: wrk -s bench/wrk/post_transaction_metadata.lua http://127.0.0.1:8000

METADATA_EVERY = 3

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "post_transaction.lua")
