-- client_credentials with a DPoP proof: POSTs BODY with Basic AUTH to PATH_, each request with the
-- next unused proof of this thread's file (PROOFS_PREFIX .. thread index .. ".txt", made by
-- bench/dpop_proofs.mjs). A proof is good once (its jti); a thread that runs out starts over, and
-- the replays are refused: they show as errors, never as throughput.
local path = os.getenv("PATH_") or "/token"
local body = os.getenv("BODY")
local auth = os.getenv("AUTH")
local prefix = os.getenv("PROOFS_PREFIX")
local threads = 0
local proofs = {}
local next_proof = 1

function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(prefix .. index .. ".txt") do
    proofs[#proofs + 1] = line
  end
end

request = function()
  local proof = proofs[next_proof]
  next_proof = next_proof % #proofs + 1
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic " .. auth, ["DPoP"] = proof }
  return wrk.format("POST", path, headers, body)
end
