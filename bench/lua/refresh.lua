-- Refresh-token rotation: POSTs grant_type=refresh_token with Basic AUTH to PATH_, every request
-- with the newest token of one chain. CHAINS names a file of first tokens, one a line (one chain
-- per connection), shared out among the threads. A token leaves its thread's pool when sent and
-- its successor (from the answer) goes back in: no token is presented twice, and with one chain
-- per connection the pool never runs dry. An answer without a successor ends its chain; when a
-- thread has none left it sends a token that cannot work, so the loss shows as errors.
local path = os.getenv("PATH_") or "/token"
local auth = os.getenv("AUTH")
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic " .. auth }
local report = os.getenv("REPORT")

local chains = {}
for line in io.lines(os.getenv("CHAINS")) do
  if line ~= "" then table.insert(chains, line) end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("index", #threads)
end

function init(args)
  pool, bad = {}, 0
  local nthreads = tonumber(os.getenv("THREADS") or "2")
  for i = index, #chains, nthreads do table.insert(pool, chains[i]) end
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- wrk calls request() once on the first thread's state before the run, to check what it makes
-- (script_verify_request), and never sends that one: it must not take a chain out of the pool.
local checked = false
request = function()
  if not checked then
    checked = true
    if index == 1 then
      return wrk.format("POST", path, headers, "grant_type=refresh_token&refresh_token=wrk-checks-the-request")
    end
  end
  local token = table.remove(pool) or "no-chain-left"
  return wrk.format("POST", path, headers, "grant_type=refresh_token&refresh_token=" .. urlencode(token))
end

response = function(status, _, body)
  if status ~= 200 then return end
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then
    table.insert(pool, token)
  else
    bad = bad + 1
  end
end

function done()
  local n = 0
  for _, thread in ipairs(threads) do n = n + (thread:get("bad") or 0) end
  local out = assert(io.open(report, "w"))
  out:write(n, "\n")
  out:close()
end
