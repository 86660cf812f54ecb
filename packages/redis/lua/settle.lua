-- settle.lua: settle a batch of deliveries of one queue (ack, retry, defer, dead-letter, extend,
-- release) in one call.
--
-- Every operation names its delivery by the member "<key>#<deliveries>" that fetch.lua put in the
-- active set. An operation whose member is no longer there (the lease expired and the message
-- was reaped, maybe handed to another consumer) changes nothing and reports 0. Retry and defer
-- store the next message under a fresh key, so its delivery count starts again at 1 and no old
-- token can ever match it.
--
-- KEYS[1]      active zset       "<key>#<deliveries>", score = lease deadline (ms)
-- KEYS[2]      body hash         message key -> body
-- KEYS[3]      delayed zset      message key, score = due time (ms)
-- KEYS[4]      wake list         token a waiting consumer blocks on
-- KEYS[5]      seq string        message key counter (also orders dead letters)
-- KEYS[6]      dead zset         dead letter key (the message key), score = order of arrival
-- KEYS[7]      dead record hash  dead letter key -> record (JSON: body, reason, error, failedAt)
-- KEYS[8..12]  waiting lists     priority 0..4
-- ARGV         operations, each an op code and its arguments:
--   'a', member                          ack: remove the message
--   'r', member, body, level, delayMs    retry: replace it by a new message (body, priority, delay)
--   'f', member, delayMs                 defer: the same body again after delayMs, count reset
--   'd', member, record                  dead-letter: remove it and keep the record
--   'e', member, leaseMs                 extend: lease deadline = now + leaseMs
--   'l', member                          release: back to the front of its level, count kept
-- Returns      one integer per operation, in order: 1 done, 0 lease lost (nothing changed)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local CHUNK = 4000
local out = {}
local gone = {}
local wake = false

local function keyOf(member)
  return string.sub(member, 1, string.find(member, '#', 1, true) - 1)
end

-- Stores body as a new message of the level, ready after delay ms.
local function store(level, body, delay)
  local key = level .. redis.call('INCR', KEYS[5])
  redis.call('HSET', KEYS[2], key, body)
  if delay > 0 then
    redis.call('ZADD', KEYS[3], now + delay, key)
  else
    redis.call('LPUSH', KEYS[8 + level], key)
    wake = true
  end
end

local i = 1
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  local member = ARGV[i + 1]
  if op == 'e' then
    if redis.call('ZSCORE', KEYS[1], member) then
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[i + 2]), member)
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
    i = i + 3
  else
    local ok = redis.call('ZREM', KEYS[1], member) == 1
    out[#out + 1] = ok and 1 or 0
    if op == 'a' then
      if ok then
        gone[#gone + 1] = keyOf(member)
      end
      i = i + 2
    elseif op == 'r' then
      if ok then
        gone[#gone + 1] = keyOf(member)
        store(tonumber(ARGV[i + 3]), ARGV[i + 2], tonumber(ARGV[i + 4]))
      end
      i = i + 5
    elseif op == 'f' then
      if ok then
        local key = keyOf(member)
        local body = redis.call('HGET', KEYS[2], key)
        redis.call('HDEL', KEYS[2], key)
        if body then
          store(tonumber(string.sub(key, 1, 1)), body, tonumber(ARGV[i + 2]))
        end
      end
      i = i + 3
    elseif op == 'd' then
      if ok then
        local key = keyOf(member)
        gone[#gone + 1] = key
        redis.call('ZADD', KEYS[6], redis.call('INCR', KEYS[5]), key)
        redis.call('HSET', KEYS[7], key, ARGV[i + 2])
      end
      i = i + 3
    elseif op == 'l' then
      if ok then
        redis.call('RPUSH', KEYS[8 + tonumber(string.sub(member, 1, 1))], member)
        wake = true
      end
      i = i + 2
    else
      return redis.error_reply('ERR settle.lua: unknown operation ' .. tostring(op))
    end
  end
end
for j = 1, #gone, CHUNK do
  redis.call('HDEL', KEYS[2], unpack(gone, j, math.min(j + CHUNK - 1, #gone)))
end
if wake and redis.call('LLEN', KEYS[4]) == 0 then
  redis.call('LPUSH', KEYS[4], '1')
end
return out
