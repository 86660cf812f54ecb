-- insert.lua: inserts each record unless its id exists (any status), unpublished.
-- ARGV  15 per record: id, name, queue, status, attempt, maxAttempts, priority, tags (JSON array),
--       metadataJson (opt), traceJson (opt), payloadJson, enqueuedAt, runAt, timeout, gen
-- Returns one integer per record: 1 inserted, 0 exists.

local out = {}
for i = 1, #ARGV, 15 do
  local id = ARGV[i]
  local key = jobKey(id)
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
  else
    local seq = redis.call('INCR', base .. 'seq')
    local status = ARGV[i + 3]
    redis.call('HSET', key, 'id', id, 'name', ARGV[i + 1], 'queue', ARGV[i + 2], 'status', status,
      'attempt', ARGV[i + 4], 'maxAttempts', ARGV[i + 5], 'priority', ARGV[i + 6], 'tags', ARGV[i + 7],
      'payloadJson', ARGV[i + 10], 'enqueuedAt', ARGV[i + 11], 'runAt', ARGV[i + 12], 'timeout', ARGV[i + 13],
      'gen', ARGV[i + 14], 'fence', 0, 'claims', 0, 'claimExpiresAt', 0, 'published', 0, 'cancelRequested', 0,
      'updatedAt', now, 'seq', seq)
    setOpt(key, 'metadataJson', ARGV[i + 8])
    setOpt(key, 'traceJson', ARGV[i + 9])
    redis.call('ZADD', base .. 'all', seq, id)
    redis.call('ZADD', base .. 'status:' .. status, seq, id)
    redis.call('ZADD', base .. 'queue:' .. ARGV[i + 2], seq, id)
    redis.call('ZADD', base .. 'name:' .. ARGV[i + 1], seq, id)
    for _, tag in ipairs(cjson.decode(ARGV[i + 7])) do
      redis.call('ZADD', base .. 'tag:' .. tag, seq, id)
    end
    redis.call('ZADD', UNPUBLISHED, now, id)
    out[#out + 1] = 1
  end
end
return out
