-- The soak's mixed load (bench.py --soak). Every request picks its kind by weight (MIX, e.g.
-- "cc=30,refresh=20,introspect=29,apikey_test=10,apikey_exchange=10,login=1"); with RATE > 0
-- the threads pace themselves to RATE requests/s in all (THREADS threads), otherwise they go as
-- fast as the connections allow (the capacity measurement).
--
-- Refresh chains: CHAINS_IN names a file of refresh tokens, one per line, shared out among the
-- threads. A token is taken out of its thread's pool while its rotation is in flight, and the
-- token the answer carries goes back in: no token is presented twice, each chain goes on from
-- its newest token. At the end the tokens in the pools (never those in flight when wrk stopped)
-- are written to REPORT, so the next interval continues the same chains.
--
-- REPORT also gets what wrk itself cannot tell: requests sent per kind, answers with an error
-- status by status, and answers that succeeded at HTTP level but not in substance (an inactive
-- introspection, an API key found invalid, a login that did not sign in).

local ffi = require("ffi")
ffi.cdef [[
struct soak_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clock_id, struct soak_timespec *tp);
]]
local ts = ffi.new("struct soak_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local env = os.getenv
local rate = tonumber(env("RATE") or "0")
local nthreads = tonumber(env("THREADS") or "1")

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- The kinds and their weights.
local kinds, total = {}, 0
for name, weight in (env("MIX") or ""):gmatch("([%w_]+)=(%d+)") do
  weight = tonumber(weight)
  if weight > 0 then
    total = total + weight
    table.insert(kinds, { name = name, upto = total })
  end
end

local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local function with(base, extra)
  local h = {}
  for k, v in pairs(base) do h[k] = v end
  for k, v in pairs(extra) do h[k] = v end
  return h
end
local cc_headers = with(form, { ["Authorization"] = "Basic " .. (env("CC_AUTH") or "") })
local cc_body = "grant_type=client_credentials"
local refresh_headers = with(form, { ["Authorization"] = "Basic " .. (env("REFRESH_AUTH") or "") })
-- Introspection alternates between a JWT access token (asked by a resource server) and an opaque
-- refresh token (asked by its own client: sesame tells no other client about a refresh token).
local introspect = {
  { with(form, { ["Authorization"] = "Basic " .. (env("RS_AUTH") or "") }), "token=" .. urlencode(env("ACCESS_TOKEN") or "") },
  { refresh_headers, "token=" .. urlencode(env("INTROSPECT_REFRESH") or "") },
}
local apikey_test_headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. (env("ADMIN_TOKEN") or "") }
local apikey_test_body = '{"key":"' .. (env("API_KEY") or "") .. '"}'
local exchange_body = "grant_type=" .. urlencode("urn:ietf:params:oauth:grant-type:token-exchange")
  .. "&subject_token=" .. urlencode(env("API_KEY") or "")
  .. "&subject_token_type=" .. urlencode("urn:sesame:params:oauth:token-type:api_key")
local login_headers = with(form, { ["Cookie"] = env("LOGIN_COOKIE") or "" })
local login_body = env("LOGIN_BODY") or ""

-- This thread's state; globals, so that done() can read them through thread:get().
pool = {}    -- refresh tokens ready to be presented
sent = {}    -- kind -> requests sent
status = {}  -- error status -> answers
bad = {}     -- what was wrong -> answers (2xx/3xx that did not do what the kind should)

local function count(t, k)
  t[k] = (t[k] or 0) + 1
end

-- --- the main thread: share the chains out, collect the report -----------------------------

local threads = {}
local chains_in = {}
if env("CHAINS_IN") then
  local f = io.open(env("CHAINS_IN"))
  if f then
    for line in f:lines() do
      if line ~= "" then table.insert(chains_in, line) end
    end
    f:close()
  end
end

function setup(thread)
  local index = #threads + 1
  table.insert(threads, thread)
  local mine = {}
  for i = index, #chains_in, nthreads do table.insert(mine, chains_in[i]) end
  thread:set("index", index)
  thread:set("chains", table.concat(mine, "\n"))
end

function done(summary, latency, requests)
  local out = assert(io.open(env("REPORT"), "w"))
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("sent") or {}) do out:write("sent ", k, " ", v, "\n") end
    for k, v in pairs(thread:get("status") or {}) do out:write("status ", k, " ", v, "\n") end
    for k, v in pairs(thread:get("bad") or {}) do out:write("bad ", v, " ", k, "\n") end
    for _, token in ipairs(thread:get("pool") or {}) do out:write("chain ", token, "\n") end
  end
  out:close()
end

-- --- each load thread -------------------------------------------------------------------------

function init(args)
  for token in (chains or ""):gmatch("[^\n]+") do table.insert(pool, token) end
  math.randomseed(math.floor(now_ms() * 1000) % 2147483647 + (index or 0) * 7919)
end

local function pick()
  local r = math.random() * total
  for _, k in ipairs(kinds) do
    if r < k.upto then return k.name end
  end
  return kinds[#kinds].name
end

local turn = 0
function request()
  local kind = pick()
  if kind == "refresh" and #pool == 0 then
    -- Every chain of this thread is in flight (or lost): count it, and do a client_credentials.
    count(sent, "refresh_skipped")
    kind = "cc"
  end
  count(sent, kind)
  if kind == "cc" then
    return wrk.format("POST", "/token", cc_headers, cc_body)
  elseif kind == "refresh" then
    local token = table.remove(pool, 1)
    return wrk.format("POST", "/token", refresh_headers, "grant_type=refresh_token&refresh_token=" .. urlencode(token))
  elseif kind == "introspect" then
    turn = turn % 2 + 1
    return wrk.format("POST", "/introspect", introspect[turn][1], introspect[turn][2])
  elseif kind == "apikey_test" then
    return wrk.format("POST", "/admin/api-keys/test", apikey_test_headers, apikey_test_body)
  elseif kind == "apikey_exchange" then
    return wrk.format("POST", "/token", form, exchange_body)
  elseif kind == "login" then
    return wrk.format("POST", "/login", login_headers, login_body)
  end
  error("unknown kind in MIX: " .. kind)
end

function response(code, headers, body)
  if code >= 400 then
    count(status, code)
  elseif code == 200 then
    local token = body:match('"refresh_token":"([^"]+)"')
    if token then
      table.insert(pool, token)
    elseif body:find('"active":true', 1, true) or body:find('"valid":true', 1, true) or body:find('"access_token":"', 1, true) then
      -- introspection, an API-key test, client_credentials or an exchange: as expected
    elseif body:find('"active":false', 1, true) then
      count(bad, "introspection answered active=false")
    elseif body:find('"valid":false', 1, true) then
      count(bad, "API-key test answered valid=false (" .. (body:match('"reason":"([^"]*)"') or "?") .. ")")
    else
      count(bad, "200 with an unexpected body: " .. body:sub(1, 60):gsub("%s+", " "))
    end
  elseif code == 302 or code == 303 then
    local location = headers["Location"] or headers["location"] or ""
    if not location:find("/authorize/resume", 1, true) then
      count(bad, code .. " to an unexpected place: " .. location:sub(1, 60))
    end
  else
    count(bad, "unexpected status " .. code)
  end
end

-- Pacing: each thread hands out send times RATE/THREADS per second apart; a connection waits for
-- the next free one. A thread that fell behind catches up at most 50 ms' worth at once.
-- Defined only when paced, so that the unthrottled run has no timer per request.
if rate > 0 then
  local interval = 1000 / (rate / nthreads)
  local next_slot = nil
  function delay()
    local t = now_ms()
    if next_slot == nil or next_slot < t - 50 then next_slot = t end
    local wait = next_slot - t
    next_slot = next_slot + interval
    return math.floor(wait)
  end
end
