-- purge.lua: remove up to ARGV[1] waiting, delayed and dead messages of one queue per call (the
-- client calls again while a call removed a full chunk, so Redis is never blocked for long).
-- Deliveries in flight (the active set and their bodies) are left alone and stay settleable; so
-- are the dedupe window and the key counter.
--
-- KEYS[1]      body hash         message key -> body
-- KEYS[2]      delayed zset      message key, score = due time (ms)
-- KEYS[3]      dead zset         dead letter key, score = order of arrival
-- KEYS[4]      dead record hash  dead letter key -> record (JSON)
-- KEYS[5]      wake list         token an idle consumer blocks on
-- KEYS[6..10]  waiting lists     priority 0..4 (entries "<key>" or "<key>#<deliveries>")
-- ARGV[1]      most entries to remove in this call
-- Returns      how many entries were removed (less than ARGV[1]: the queue is now empty)

local budget = tonumber(ARGV[1])
local removed = 0

local function forget(hash, keys)
  if #keys > 0 then
    redis.call('HDEL', hash, unpack(keys))
    removed = removed + #keys
    budget = budget - #keys
  end
end

for l = 6, 10 do
  if budget > 0 then
    local entries = redis.call('LRANGE', KEYS[l], 0, budget - 1)
    if #entries > 0 then
      redis.call('LTRIM', KEYS[l], #entries, -1)
      for i, entry in ipairs(entries) do
        local hash = string.find(entry, '#', 1, true)
        if hash then
          entries[i] = string.sub(entry, 1, hash - 1)
        end
      end
      forget(KEYS[1], entries)
    end
  end
end
if budget > 0 then
  local keys = redis.call('ZRANGE', KEYS[2], 0, budget - 1)
  if #keys > 0 then
    redis.call('ZREM', KEYS[2], unpack(keys))
    forget(KEYS[1], keys)
  end
end
if budget > 0 then
  local keys = redis.call('ZRANGE', KEYS[3], 0, budget - 1)
  if #keys > 0 then
    redis.call('ZREM', KEYS[3], unpack(keys))
    forget(KEYS[4], keys)
  end
end
if budget > 0 then
  redis.call('DEL', KEYS[5])
end
return removed
