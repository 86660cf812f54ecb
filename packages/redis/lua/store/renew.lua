-- renew.lua: renews each claim for ttlMs from now, if the record is still active under fence.
-- ARGV     3 per request: id, fence, ttlMs
-- Returns  one array per request: {1, cancelRequested (0/1)} or {0}

local out = {}
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  local key = jobKey(id)
  local r = redis.call('HMGET', key, 'status', 'fence', 'cancelRequested', 'published')
  if r[1] == 'active' and tonumber(r[2]) == tonumber(ARGV[i + 1]) then
    redis.call('HSET', key, 'claimExpiresAt', now + tonumber(ARGV[i + 2]), 'updatedAt', now)
    syncUnpublished(id, 'active', r[4])
    out[#out + 1] = { 1, tonumber(r[3]) }
  else
    out[#out + 1] = { 0 }
  end
end
return out
