-- settle.lua: settle a batch of deliveries of one queue (ack, retry, defer, dead-letter, extend,
-- release) in one call.
--
-- Every operation names its delivery by the member "<key>#<deliveries>" that fetch.lua put in the
-- active set. An operation whose member is no longer there (the lease expired and the message
-- was reaped, maybe handed to another consumer), or whose lease deadline has passed (the next
-- fetch reaps it), changes nothing and reports 0. Retry and defer
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
--   'u', member                          unfetch: back to the front, never handed out (count - 1)
--   'F', member, id, fence, status, resultJson, errorJson, attempt, runAt, token
--                                        fused only (FUSED, KEYS[13] the store's base): finish the
--                                        job's record (finishOne, store/common.lua), then ack
-- Returns      one integer per operation, in order: 1 done, 0 lease lost (nothing changed); for
--              'F': 1 finished and acked, 2 finished but the lease was lost (not acked), 0 the
--              finish was refused (nothing changed: the delivery stays held)

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
  end
  -- Idle consumers must learn of it (ready now) or of its due time (delayed).
  wake = true
end

-- Pass 1: which deliveries still hold their lease (one ZMSCORE for the batch), then remove them
-- all from the active set at once (one ZREM). A member is in one operation at most, but an
-- extension may precede the settlement of the same delivery in one batch.
local members = {}
local finishing = {}
local i = 1
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  if op ~= 'e' then
    members[#members + 1] = ARGV[i + 1]
  end
  if op == 'F' then
    finishing[ARGV[i + 1]] = true
  end
  if op == 'a' or op == 'l' or op == 'u' then
    i = i + 2
  elseif op == 'F' and FUSED then
    i = i + 10
  elseif op == 'r' then
    i = i + 5
  elseif op == 'f' or op == 'd' or op == 'e' then
    i = i + 3
  else
    return redis.error_reply('ERR settle.lua: unknown operation ' .. tostring(op))
  end
end
local held = {}
if #members > 0 then
  local live = {}
  for j = 1, #members, CHUNK do
    local scores = redis.call('ZMSCORE', KEYS[1], unpack(members, j, math.min(j + CHUNK - 1, #members)))
    for k = 1, #scores do
      -- A lease past its deadline is lost even before a fetch reaped it (the consumer stalled).
      if scores[k] and tonumber(scores[k]) > now then
        local member = members[j + k - 1]
        held[member] = true
        -- A fused finish keeps its lease until its record's finish is known (pass 2).
        if not finishing[member] then live[#live + 1] = member end
      end
    end
  end
  for j = 1, #live, CHUNK do
    redis.call('ZREM', KEYS[1], unpack(live, j, math.min(j + CHUNK - 1, #live)))
  end
end

-- Pass 2: apply each operation in order.
local unleased = {} -- members of fused finishes that still held their lease: out of the active set at the end
i = 1
while i <= n do
  local op = ARGV[i]
  local member = ARGV[i + 1]
  if op == 'e' then
    if held[member] then
      out[#out + 1] = 1 -- settled later in this batch: the extension is moot but was valid
    elseif (tonumber(redis.call('ZSCORE', KEYS[1], member)) or 0) > now then
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[i + 2]), member)
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
    i = i + 3
  else
    local ok = held[member] == true
    out[#out + 1] = ok and 1 or 0
    if op == 'a' then
      if ok then
        gone[#gone + 1] = keyOf(member)
      end
      i = i + 2
    elseif op == 'F' then
      local finished = finishOne(ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9])
      if finished == 0 then
        out[#out] = 0
      elseif ok then
        unleased[#unleased + 1] = member
        gone[#gone + 1] = keyOf(member)
      else
        out[#out] = 2
      end
      i = i + 10
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
    else -- 'l' or 'u'
      if ok then
        local entry = member
        if op == 'u' then
          local hash = string.find(member, '#', 1, true)
          local count = tonumber(string.sub(member, hash + 1)) - 1
          entry = string.sub(member, 1, hash - 1)
          if count > 0 then
            entry = entry .. '#' .. count
          end
        end
        redis.call('RPUSH', KEYS[8 + tonumber(string.sub(member, 1, 1))], entry)
        wake = true
      end
      i = i + 2
    end
  end
end
for j = 1, #unleased, CHUNK do
  redis.call('ZREM', KEYS[1], unpack(unleased, j, math.min(j + CHUNK - 1, #unleased)))
end
for j = 1, #gone, CHUNK do
  redis.call('HDEL', KEYS[2], unpack(gone, j, math.min(j + CHUNK - 1, #gone)))
end
if wake and redis.call('LLEN', KEYS[4]) == 0 then
  redis.call('LPUSH', KEYS[4], '1')
end
return out
