-- purge.lua: remove every waiting, delayed and dead message of one queue. Deliveries in flight
-- (the active set and their bodies) are left alone and stay settleable; the dedupe window too.
--
-- KEYS[1]      body hash         message key -> body
-- KEYS[2]      delayed zset      message key, score = due time (ms)
-- KEYS[3]      dead zset         dead letter key, score = order of arrival
-- KEYS[4]      dead record hash  dead letter key -> record (JSON)
-- KEYS[5]      wake list         token a waiting consumer blocks on
-- KEYS[6..10]  waiting lists     priority 0..4 (entries "<key>" or "<key>#<deliveries>")
-- ARGV         none
-- Returns      how many waiting and delayed messages were removed

local CHUNK = 4000
local removed = 0

local function drop(keys)
  for i = 1, #keys, CHUNK do
    redis.call('HDEL', KEYS[1], unpack(keys, i, math.min(i + CHUNK - 1, #keys)))
  end
  removed = removed + #keys
end

for l = 6, 10 do
  local entries = redis.call('LRANGE', KEYS[l], 0, -1)
  for i, entry in ipairs(entries) do
    local hash = string.find(entry, '#', 1, true)
    if hash then
      entries[i] = string.sub(entry, 1, hash - 1)
    end
  end
  drop(entries)
end
drop(redis.call('ZRANGE', KEYS[2], 0, -1))
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
return removed
