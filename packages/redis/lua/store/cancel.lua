-- cancel.lua: cancels a job (CancelOutcome).
-- ARGV     id
-- Returns  {'cancelled'}, {'cancel-requested'}, {'finished', status} or {'not-found'}

local id = ARGV[1]
local key = jobKey(id)
local r = redis.call('HMGET', key, 'status', 'seq', 'published', 'name')
local status = r[1]
if not status then return { 'not-found' } end
if TERMINAL[status] then return { 'finished', status } end
if status == 'active' then
  redis.call('HSET', key, 'cancelRequested', 1, 'updatedAt', now)
  syncUnpublished(id, status, r[3])
  return { 'cancel-requested' }
end
setStatus(id, status, 'cancelled', r[2], r[4])
redis.call('HSET', key, 'status', 'cancelled', 'updatedAt', now, 'finishedAt', now)
syncUnpublished(id, 'cancelled', r[3])
ended(id, 'cancelled')
return { 'cancelled' }
