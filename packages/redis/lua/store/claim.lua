-- claim.lua: claims each job for one delivery (ClaimOutcome in packages/core/src/store.ts).
-- ARGV     4 per request: id, gen, ttlMs, worker
-- Returns  one array per request: {'claimed', fence, claims, cancelRequested (0/1)},
--          {'stale'} (no record), {'stale', status}, or {'busy', retryInMs}

local out = {}
for i = 1, #ARGV, 4 do
  local id = ARGV[i]
  local key = jobKey(id)
  local r = redis.call('HMGET', key, 'status', 'gen', 'claimExpiresAt', 'seq', 'published', 'cancelRequested')
  local status = r[1]
  if not status then
    out[#out + 1] = { 'stale' }
  elseif tonumber(r[2]) ~= tonumber(ARGV[i + 1]) or TERMINAL[status] then
    out[#out + 1] = { 'stale', status }
  elseif status == 'active' and tonumber(r[3]) > now then
    out[#out + 1] = { 'busy', tonumber(r[3]) - now }
  elseif status ~= 'active' and not RUNNABLE[status] then
    out[#out + 1] = { 'stale', status }
  else
    local fence = redis.call('HINCRBY', key, 'fence', 1)
    local claims = redis.call('HINCRBY', key, 'claims', 1)
    setStatus(key, id, status, 'active', r[4])
    redis.call('HSET', key, 'claimExpiresAt', now + tonumber(ARGV[i + 2]), 'worker', ARGV[i + 3],
      'startedAt', now, 'updatedAt', now)
    syncUnpublished(id, 'active', r[5])
    out[#out + 1] = { 'claimed', fence, claims, tonumber(r[6]) }
  end
end
return out
