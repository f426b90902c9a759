-- Workload (a): POST /transaction, a realistic mix over 10,000 users (bench_00001 …).
--   45 % top-ups, 15 % bonuses, 40 % purchases; in GC (70 %), DI (20 %) or LP (10 %).
--   Every user starts with a top-up of 100.00 GC (bench/run.py), so purchases in DI or LP and
--   large ones in GC are refused for insufficient funds, mostly early in a run.
--   Amounts are JSON numbers or decimal strings, half each.
--   A fifth of the requests carry an Idempotency-Key header; one in ten of those repeats a
--   recent key with its original body, and is answered with the replay.
--   With METADATA_EVERY = n (a global set before this script runs, as
--   post_transaction_metadata.lua does; 0 by default), every n-th new body carries metadata, an
--   order id of its own and a store: {"order_id": "wrk-<nonce>-<thread>-<n>", "store": "ios"}.
--   It is chosen by counting, not by drawing from the generator, so that a run with metadata
--   sends the same mix, request by request, as a run without it with the same seed.
-- Usage: wrk -s bench/wrk/post_transaction.lua http://127.0.0.1:8000

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

local TYPES = {{"topup", 0.45}, {"bonus", 0.15}, {"purchase", 0.40}}
local ASSETS = {{"GC", 0.70}, {"DI", 0.20}, {"LP", 0.10}}
-- Amount ranges in minor units (scale 2).
local AMOUNTS = {topup = {100, 10000}, bonus = {1, 500}, purchase = {100, 8000}}
local DESCRIPTIONS = {
   topup = {"Purchased Gold Coins pack", "Store top-up", "Starter pack"},
   bonus = {"Daily login bonus", "Referral bonus", "Season reward"},
   purchase = {"Bought in-game item", "Unlocked level pack", "Cosmetic skin"},
}
local KEYED_SHARE = 0.20
local REPEAT_SHARE = 0.10
local RECENT_KEYS = 100
local STORES = {"ios", "android", "web"}
local metadata_every = METADATA_EVERY or 0

local recent = {}     -- ring of {key, body} this thread sent with a key
local sent_keys = 0
local new_bodies = 0

setup = common.setup
response = common.response
done = common.done

function init(args)
   common.init()
end

local function amount_json(minor)
   local text = string.format("%d.%02d", math.floor(minor / 100), minor % 100)
   if math.random() < 0.5 then
      return text
   end
   return '"' .. text .. '"'
end

-- The metadata member of the n-th new body ("" when it carries none).
local function metadata_json(n)
   if metadata_every == 0 or n % metadata_every ~= 0 then
      return ""
   end
   local store = STORES[math.floor(n / metadata_every) % #STORES + 1]
   return string.format(', "metadata": {"order_id": "wrk-%s-%d-%d", "store": "%s"}',
      common.nonce, thread_id, n, store)
end

local function new_body()
   local kind = common.pick(TYPES)
   local range = AMOUNTS[kind]
   local descriptions = DESCRIPTIONS[kind]
   new_bodies = new_bodies + 1
   return string.format(
      '{"transaction_type": "%s", "user_id": "%s", "asset_code": "%s", "amount": %s, '
         .. '"description": "%s"%s}',
      kind, common.user(), common.pick(ASSETS), amount_json(math.random(range[1], range[2])),
      descriptions[math.random(#descriptions)], metadata_json(new_bodies))
end

function request()
   local headers = {["Content-Type"] = "application/json"}
   local body
   if math.random() < KEYED_SHARE then
      if #recent > 0 and math.random() < REPEAT_SHARE then
         local previous = recent[math.random(#recent)]
         headers["Idempotency-Key"] = previous[1]
         body = previous[2]
      else
         sent_keys = sent_keys + 1
         local key = string.format("bench-%s-%d-%d", common.nonce, thread_id, sent_keys)
         body = new_body()
         headers["Idempotency-Key"] = key
         recent[(sent_keys - 1) % RECENT_KEYS + 1] = {key, body}
      end
   else
      body = new_body()
   end
   return wrk.format("POST", "/transaction", headers, body)
end
