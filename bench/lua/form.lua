-- POSTs a fixed form body (BODY) with Basic credentials (AUTH) and a Cookie (COOKIE) to PATH.
local path = os.getenv("PATH_") or "/token"
local body = os.getenv("BODY")
local auth = os.getenv("AUTH")
local cookie = os.getenv("COOKIE")
request = function()
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  if auth and auth ~= "" then headers["Authorization"] = "Basic " .. auth end
  if cookie and cookie ~= "" then headers["Cookie"] = cookie end
  return wrk.format("POST", path, headers, body)
end
