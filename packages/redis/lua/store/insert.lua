-- insert.lua: inserts each record unless its id exists (any status), unpublished.
-- ARGV  16 per record: id, name, queue, status, attempt, maxAttempts, priority, tags (JSON array),
--       metadataJson (opt), traceJson (opt), payloadJson, enqueuedAt, runAt, timeout, gen, token
-- Returns one integer per record: 1 inserted, 0 exists. The token (unique per request) makes a
-- replay of this very call (ioredis resends a command whose reply a dropped connection lost)
-- answer 1 again instead of "exists".

local out = {}
for i = 1, #ARGV, 16 do
  local id = ARGV[i]
  local key = jobKey(id)
  local found = redis.call('HMGET', key, 'id', 'insertToken')
  if found[1] then
    out[#out + 1] = (found[2] == ARGV[i + 15]) and 1 or 0
  else
    local seq = redis.call('INCR', base .. 'seq')
    local status = ARGV[i + 3]
    -- The fields a claim or a finish reads or writes come first, all present from the start (""
    -- for none yet): a small record is a listpack, which HMGET and HSET search from its front.
    local fields = { 'status', status, 'gen', ARGV[i + 14], 'fence', 0, 'claims', 0, 'claimExpiresAt', 0,
      'published', 0, 'cancelRequested', 0, 'seq', seq, 'name', ARGV[i + 1], 'claimToken', '', 'finishToken', '',
      'updatedAt', now, 'worker', '', 'startedAt', '', 'finishedAt', '', 'resultJson', '', 'errorJson', '',
      'progressJson', '', 'id', id, 'queue', ARGV[i + 2], 'attempt', ARGV[i + 4], 'maxAttempts', ARGV[i + 5],
      'priority', ARGV[i + 6], 'tags', ARGV[i + 7], 'payloadJson', ARGV[i + 10], 'enqueuedAt', ARGV[i + 11],
      'runAt', ARGV[i + 12], 'timeout', ARGV[i + 13], 'insertToken', ARGV[i + 15] }
    addOpt(fields, 'metadataJson', ARGV[i + 8])
    addOpt(fields, 'traceJson', ARGV[i + 9])
    redis.call('HSET', key, unpack(fields))
    redis.call('ZADD', base .. 'all', seq, id)
    if not TERMINAL[status] then redis.call('ZADD', OPEN, seq, id) end
    if INDEXED[status] then redis.call('ZADD', base .. 'status:' .. status, seq, id) end
    redis.call('ZADD', base .. 'queue:' .. ARGV[i + 2], seq, id)
    redis.call('ZADD', base .. 'name:' .. ARGV[i + 1], seq, id)
    if ARGV[i + 7] ~= '[]' then
      for _, tag in ipairs(cjson.decode(ARGV[i + 7])) do
        redis.call('ZADD', base .. 'tag:' .. tag, seq, id)
      end
    end
    syncUnpublished(id, status, '0')
    out[#out + 1] = 1
  end
end
return out
