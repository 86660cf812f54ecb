-- claim.lua: claims each job for one delivery (claimOne in common.lua).
-- ARGV     5 per request: id, gen, ttlMs, worker, token
-- Returns  one array per request (see claimOne)

local out = {}
for i = 1, #ARGV, 5 do
  out[#out + 1] = claimOne(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
end
return out
