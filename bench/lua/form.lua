-- POSTs a fixed form body (BODY) with Basic credentials (AUTH), a Cookie (COOKIE) and one more
-- header (HEADER_NAME: HEADER_VALUE) to PATH_; CONTENT_TYPE overrides the form content type.
-- With EXPECT set, an answer below 300 whose body does not contain EXPECT (plain text) is counted
-- as bad, and the count is written to REPORT at the end: a 200 that did not do the job (an
-- introspection answering `"active":false`) is an error, not throughput.
local path = os.getenv("PATH_") or "/token"
local body = os.getenv("BODY")
local auth = os.getenv("AUTH")
local cookie = os.getenv("COOKIE")
local headers = { ["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/x-www-form-urlencoded" }
if auth and auth ~= "" then headers["Authorization"] = (os.getenv("AUTH_SCHEME") or "Basic") .. " " .. auth end
if cookie and cookie ~= "" then headers["Cookie"] = cookie end
local extra = os.getenv("HEADER_NAME")
if extra and extra ~= "" then headers[extra] = os.getenv("HEADER_VALUE") end
local request_text = nil
request = function()
  if not request_text then request_text = wrk.format("POST", path, headers, body) end
  return request_text
end

local expect = os.getenv("EXPECT")
if expect and expect ~= "" then
  bad = 0
  local threads = {}
  function setup(thread) table.insert(threads, thread) end
  response = function(status, _, answer)
    if status < 300 and not answer:find(expect, 1, true) then bad = bad + 1 end
  end
  function done()
    local n = 0
    for _, thread in ipairs(threads) do n = n + (thread:get("bad") or 0) end
    local out = assert(io.open(os.getenv("REPORT"), "w"))
    out:write(n, "\n")
    out:close()
  end
end
