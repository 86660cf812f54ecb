-- inspect.lua: counts and dead letters of one queue (read-only but for 'remove').
--
-- KEYS[1]      active zset       "<key>#<deliveries>", score = lease deadline (ms)
-- KEYS[2]      delayed zset      message key, score = due time (ms)
-- KEYS[3]      dead zset         dead letter key, score = order of arrival
-- KEYS[4]      dead record hash  dead letter key -> record (JSON)
-- KEYS[5..9]   waiting lists     priority 0..4
-- ARGV[1]      'counts'                        -> { waiting, delayed, active, dead }
--              'list', offset, limit           -> { key, record, key, record, ... } oldest first
--              'remove', key, key, ...         -> how many dead letters were removed
-- Returns      see ARGV[1]

local mode = ARGV[1]
if mode == 'counts' then
  local waiting = 0
  for l = 5, 9 do
    waiting = waiting + redis.call('LLEN', KEYS[l])
  end
  return { waiting, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[3]) }
elseif mode == 'list' then
  local offset = tonumber(ARGV[2])
  local keys = redis.call('ZRANGE', KEYS[3], offset, offset + tonumber(ARGV[3]) - 1)
  if #keys == 0 then
    return {}
  end
  local records = redis.call('HMGET', KEYS[4], unpack(keys))
  local out = {}
  for i = 1, #keys do
    if records[i] then
      out[#out + 1] = keys[i]
      out[#out + 1] = records[i]
    end
  end
  return out
elseif mode == 'remove' then
  local removed = 0
  for i = 2, #ARGV do
    if redis.call('ZREM', KEYS[3], ARGV[i]) == 1 then
      redis.call('HDEL', KEYS[4], ARGV[i])
      removed = removed + 1
    end
  end
  return removed
end
return redis.error_reply('ERR inspect.lua: unknown mode ' .. tostring(mode))
