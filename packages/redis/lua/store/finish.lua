-- finish.lua: ends each attempt, only while the record is active under fence (finishOne in common.lua).
-- ARGV     8 per request: id, fence, status, resultJson (opt), errorJson (opt), attempt (opt), runAt (opt), token
-- Returns  one integer per request: 1 written (now or by a replayed first run), 0 not active under fence

local out = {}
for i = 1, #ARGV, 8 do
  out[#out + 1] = finishOne(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7])
end
return out
