-- transition.lua: a conditional status change outside a claim (TransitionRequest).
-- ARGV     id, gen (opt), to, bumpGen ("1"/"0"), attempt (opt), runAt (opt), then the from statuses
-- Returns  the record after it (HGETALL), or nil when the condition failed

local id = ARGV[1]
local key = jobKey(id)
local r = redis.call('HMGET', key, 'status', 'gen', 'seq', 'published', 'name')
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
setStatus(id, status, to, r[3], r[5])
local fields = { 'status', to, 'updatedAt', now, 'claimExpiresAt', 0 }
if ARGV[4] == '1' then
  for _, v in ipairs({ 'gen', tonumber(r[2]) + 1, 'published', 0, 'claims', 0, 'cancelRequested', 0 }) do
    fields[#fields + 1] = v
  end
  addOpt(fields, 'attempt', ARGV[5])
  published = '0'
end
addOpt(fields, 'runAt', ARGV[6])
fields[#fields + 1] = 'finishedAt'
fields[#fields + 1] = TERMINAL[to] and now or ''
redis.call('HSET', key, unpack(fields))
if TERMINAL[to] then ended(id, to) end
syncUnpublished(id, to, published)
return redis.call('HGETALL', key)
