-- finish.lua: ends each attempt, only while the record is active under fence (FinishRequest).
-- ARGV     7 per request: id, fence, status, resultJson (opt), errorJson (opt), attempt (opt), runAt (opt)
-- Returns  one integer per request: 1 written, 0 not active under fence (nothing written)

local out = {}
for i = 1, #ARGV, 7 do
  local id = ARGV[i]
  local key = jobKey(id)
  local r = redis.call('HMGET', key, 'status', 'fence', 'claims', 'seq', 'published')
  if r[1] ~= 'active' or tonumber(r[2]) ~= tonumber(ARGV[i + 1]) then
    out[#out + 1] = 0
  else
    local to = ARGV[i + 2]
    setStatus(key, id, 'active', to, r[4])
    redis.call('HSET', key, 'updatedAt', now, 'claimExpiresAt', 0, 'cancelRequested', 0)
    if to == 'waiting' then
      redis.call('HSET', key, 'claims', math.max(0, tonumber(r[3]) - 1))
      syncUnpublished(id, to, r[5])
    elseif to == 'retrying' then
      redis.call('HINCRBY', key, 'gen', 1)
      redis.call('HSET', key, 'published', 0, 'claims', 0)
      setOpt(key, 'attempt', ARGV[i + 5])
      setOpt(key, 'runAt', ARGV[i + 6])
      setOpt(key, 'errorJson', ARGV[i + 4])
      syncUnpublished(id, to, '0')
    else
      redis.call('HSET', key, 'finishedAt', now)
      setOpt(key, 'resultJson', ARGV[i + 3])
      setOpt(key, 'errorJson', ARGV[i + 4])
      syncUnpublished(id, to, r[5])
      ended(id, to)
    end
    out[#out + 1] = 1
  end
end
return out
