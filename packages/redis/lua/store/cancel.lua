-- cancel.lua: cancels a job (CancelOutcome).
-- ARGV     id
-- Returns  {'cancelled'}, {'cancel-requested'}, {'finished', status} or {'not-found'}

local id = ARGV[1]
local key = jobKey(id)
local r = redis.call('HMGET', key, 'status', 'seq', 'published')
local status = r[1]
if not status then return { 'not-found' } end
if TERMINAL[status] then return { 'finished', status } end
redis.call('HSET', key, 'updatedAt', now)
if status == 'active' then
  redis.call('HSET', key, 'cancelRequested', 1)
  syncUnpublished(id, status, r[3])
  return { 'cancel-requested' }
end
setStatus(key, id, status, 'cancelled', r[2])
redis.call('HSET', key, 'finishedAt', now)
syncUnpublished(id, 'cancelled', r[3])
ended(id, 'cancelled')
return { 'cancelled' }
