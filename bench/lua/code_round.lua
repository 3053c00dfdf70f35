-- One round = GET the authorization endpoint with a live session cookie (-> 303 with a code),
-- then POST the code and PKCE verifier to the token endpoint. Requests alternate per thread.
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
response = function(status, headers, body)
  if status == 302 or status == 303 then
    local location = headers["Location"] or headers["location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    if code then table.insert(codes, code) end
  end
end
