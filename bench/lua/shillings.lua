-- wrk script for the Shillings benchmark (Debian's wrk: LuaJIT).
--
--   wrk ... -s bench/lua/shillings.lua URL -- MODE USERS_FILE [PASSWORD [LIMIT]]
--
-- MODE: get (plain GET of the URL's path), account, pay, topup, transactions (page of
-- LIMIT, default 20, of the first user's history), login (with PASSWORD), hold (POST
-- /v1/holds of 0.01, then its receiver captures it or voids it, alternately: half the
-- requests create holds, half finish them), refund (POST /v1/refunds of 0.01 of the
-- seeded payment that the user received).
-- USERS_FILE: one user a line, "user_id<TAB>email<TAB>jwt[<TAB>transaction_id]" (the
-- refund mode's file names the payment each user received). Each thread builds a table of
-- ready-made requests at start (random users, random pay receivers) and picks one at random
-- per request, so the client spends as little as possible per request.
-- done() prints one line "BENCH_JSON {...}" that bench/wrk.py parses.

local PREBUILT = 4096

local mode = "get"
local requests = {}
local count = 0
local next_id = 0
local tokens = {}  -- email -> jwt, for the receivers who capture or void (hold mode)
local pending = {}  -- holds created and not yet finished: { hold_id, token }
local finished = 0

function setup(thread)
   next_id = next_id + 1
   thread:set("thread_id", next_id)
end

local function read_users(path)
   local users = {}
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      local uid, email, token, tx = line:match("^(%d+)\t([^\t]+)\t([^\t]+)\t?([^\t]*)$")
      if uid then
         table.insert(users, { id = uid, email = email, token = token, tx = tx })
         tokens[email] = token
      end
   end
   f:close()
   assert(#users > 0, "no users in " .. path)
   return users
end

local function auth(user, extra)
   local headers = { ["Authorization"] = "Bearer " .. user.token }
   if extra then
      headers["Content-Type"] = "application/json"
   end
   return headers
end

local function build(users, password, limit)
   if mode == "get" then
      return { wrk.format("GET", wrk.path) }
   end
   local built = {}
   local n = #users
   for i = 1, PREBUILT do
      local user = users[math.random(n)]
      local req
      if mode == "account" then
         req = wrk.format("GET", "/v1/account", auth(user))
      elseif mode == "transactions" then
         req = wrk.format("GET", "/v1/transactions?limit=" .. limit, auth(users[1]))
      elseif mode == "topup" then
         req = wrk.format("POST", "/v1/topup", auth(user, true), '{"amount":"0.01"}')
      elseif mode == "pay" or mode == "hold" then
         local receiver = users[math.random(n)]
         while receiver.id == user.id and n > 1 do
            receiver = users[math.random(n)]
         end
         local body = '{"receiver_email":"' .. receiver.email .. '","amount":"0.01"}'
         local path = mode == "pay" and "/v1/pay" or "/v1/holds"
         req = wrk.format("POST", path, auth(user, true), body)
      elseif mode == "refund" then
         local body = '{"transaction_id":"' .. user.tx .. '","amount":"0.01"}'
         req = wrk.format("POST", "/v1/refunds", auth(user, true), body)
      elseif mode == "login" then
         local body = '{"email":"' .. user.email .. '","password":"' .. password .. '"}'
         req = wrk.format("POST", "/v1/login", { ["Content-Type"] = "application/json" }, body)
      else
         error("unknown mode " .. mode)
      end
      built[i] = req
   end
   return built
end

function init(args)
   mode = args[1] or "get"
   math.randomseed(os.time() * 1000 + (_G.thread_id or 0) * 7919)
   local users = {}
   if mode ~= "get" then
      users = read_users(args[2])
   end
   requests = build(users, args[3] or "", args[4] or "20")
   count = #requests
   if mode == "hold" then
      response = hold_created
   end
end

-- hold mode: a created hold (201) is queued for its receiver to capture or void next.
function hold_created(status, headers, body)
   if status ~= 201 then
      return
   end
   local hold_id = body:match('"hold_id"%s*:%s*"([^"]+)"')
   local receiver = body:match('"receiver_email"%s*:%s*"([^"]+)"')
   if hold_id and tokens[receiver] then
      table.insert(pending, { hold_id, tokens[receiver] })
   end
end

function request()
   local hold = table.remove(pending)
   if hold then
      finished = finished + 1
      local action = finished % 2 == 0 and "/capture" or "/void"
      local headers = { ["Authorization"] = "Bearer " .. hold[2], ["Content-Type"] = "application/json" }
      return wrk.format("POST", "/v1/holds/" .. hold[1] .. action, headers, "{}")
   end
   return requests[math.random(count)]
end

function done(summary, latency, requests_stats)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
