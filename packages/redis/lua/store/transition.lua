-- transition.lua: a conditional status change outside a claim (TransitionRequest).
-- ARGV     id, gen (opt), to, bumpGen ("1"/"0"), attempt (opt), runAt (opt), then the from statuses
-- Returns  the record after it (HGETALL), or nil when the condition failed

local id = ARGV[1]
local key = jobKey(id)
local r = redis.call('HMGET', key, 'status', 'gen', 'seq', 'published')
local status = r[1]
if not status then return nil end
local allowed = false
for i = 7, #ARGV do
  if ARGV[i] == status then allowed = true end
end
if not allowed then return nil end
local gen = opt(ARGV[2])
if gen ~= nil and tonumber(gen) ~= tonumber(r[2]) then return nil end
local to = ARGV[3]
local published = r[4]
setStatus(key, id, status, to, r[3])
redis.call('HSET', key, 'updatedAt', now, 'claimExpiresAt', 0)
if ARGV[4] == '1' then
  redis.call('HINCRBY', key, 'gen', 1)
  redis.call('HSET', key, 'published', 0, 'claims', 0, 'cancelRequested', 0)
  setOpt(key, 'attempt', ARGV[5])
  published = '0'
end
setOpt(key, 'runAt', ARGV[6])
if TERMINAL[to] then
  redis.call('HSET', key, 'finishedAt', now)
  ended(id, to)
else
  redis.call('HDEL', key, 'finishedAt')
end
syncUnpublished(id, to, published)
return redis.call('HGETALL', key)
