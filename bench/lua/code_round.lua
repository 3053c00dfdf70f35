-- One round = GET the authorization endpoint with a live session cookie (-> 303 with a code),
-- then POST the code and PKCE verifier to the token endpoint. Requests alternate per thread.
-- A redirect without a code (the session was lost: a redirect to the sign-in) and a token answer
-- without an access token are counted as bad and written to REPORT: they are errors.
local authorize = os.getenv("AUTHORIZE")
local cookie = os.getenv("COOKIE")
local token_path = os.getenv("TOKEN_PATH")
local token_body = os.getenv("TOKEN_BODY")
local auth = os.getenv("AUTH")
local codes = {}
request = function()
  local code = table.remove(codes)
  if code then
    return wrk.format("POST", token_path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = "Basic " .. auth,
    }, token_body .. code)
  end
  return wrk.format("GET", authorize, { ["Cookie"] = cookie })
end
bad = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
response = function(status, headers, body)
  if status == 302 or status == 303 then
    local location = headers["Location"] or headers["location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    if code then table.insert(codes, code) else bad = bad + 1 end
  elseif status == 200 and not body:find('"access_token"', 1, true) then
    bad = bad + 1
  end
end
function done()
  local n = 0
  for _, thread in ipairs(threads) do n = n + (thread:get("bad") or 0) end
  local out = assert(io.open(os.getenv("REPORT"), "w"))
  out:write(n, "\n")
  out:close()
end
