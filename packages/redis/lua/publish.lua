-- publish.lua: store a batch of messages in one queue, idempotent by job id within the dedupe window.
--
-- A message gets a fresh message key "<level><seq>" (level 0..4 first, so every other script can
-- tell its priority list from the key alone); its body goes into the body hash, its key into a
-- waiting list (ready now) or the delayed set (ready later). A job id published with dedupe on is
-- remembered for at least the dedupe window: publishing it again (a caller's retry, or ioredis
-- re-sending an unanswered script after a reconnect) stores nothing.
--
-- Dedupe keeps two generations of ids, plain sets (cheaper than a sorted set scored by expiry):
-- ids go into the current one; once it is a window old it becomes the previous one (the old
-- previous one is freed in the background with UNLINK). An id is thus remembered for one to two
-- windows.
--
-- KEYS[1]      body hash        message key -> body
-- KEYS[2]      delayed zset     message key, score = due time (ms)
-- KEYS[3]      seen set         job ids of the current dedupe generation
-- KEYS[4]      seq string       message key counter
-- KEYS[5]      wake list        token an idle consumer blocks on (BLPOP), pushed when any message is stored
-- KEYS[6..10]  waiting lists    priority 0..4 (LPUSH to enqueue, RPOP to take)
-- KEYS[11]     seen set         job ids of the previous dedupe generation
-- KEYS[12]     seen-since       start of the current generation (ms)
-- ARGV[1]      dedupe window in ms (0: no dedupe)
-- ARGV[2]      'u' (uniform): ARGV[3..5] = priority level (0..4), delay in ms, dedupe ("1"/"0")
--              for every message, then two per message from ARGV[6]: job id, body
--              'm' (mixed): five per message from ARGV[3]: job id, body, level, delay in ms, dedupe
-- Returns      one integer per message, in order: 0 stored, 1 duplicate (nothing stored)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local uniform = ARGV[2] == 'u'
local first, stride
if uniform then
  first, stride = 6, 2
else
  first, stride = 3, 5
end
local n = (#ARGV - first + 1) / stride
local CHUNK = 4000

-- Field f (0 id, 1 body, 2 level, 3 delay, 4 dedupe) of message i (0-based).
local function field(i, f)
  if uniform and f >= 2 then
    return ARGV[1 + f]
  end
  return ARGV[first + i * stride + f]
end

local function bulk(command, key, args)
  for i = 1, #args, CHUNK do
    redis.call(command, key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end

local seen = {}
if window > 0 then
  local since = tonumber(redis.call('GET', KEYS[12]) or '0')
  -- Rotation happens at least once a window while publishes go on, and refreshes the expiry of
  -- the previous generation and of seen-since; the current one is refreshed by every SADD below.
  if now - since >= 2 * window then
    redis.call('UNLINK', KEYS[3], KEYS[11])
    redis.call('SET', KEYS[12], now, 'PX', 2 * window)
  elseif now - since >= window then
    redis.call('UNLINK', KEYS[11])
    if redis.call('EXISTS', KEYS[3]) == 1 then
      redis.call('RENAME', KEYS[3], KEYS[11])
      redis.call('PEXPIRE', KEYS[11], 2 * window)
    end
    redis.call('SET', KEYS[12], now, 'PX', 2 * window)
  end
  -- One SMISMEMBER per generation for the whole batch; `seen` also catches an id twice in it.
  local ids = {}
  for i = 0, n - 1 do
    if field(i, 4) == '1' then
      ids[#ids + 1] = field(i, 0)
    end
  end
  for _, set in ipairs({ KEYS[3], KEYS[11] }) do
    for i = 1, #ids, CHUNK do
      local part = redis.call('SMISMEMBER', set, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
      for j = 1, #part do
        if part[j] == 1 then
          seen[ids[i + j - 1]] = true
        end
      end
    end
  end
end
local last = redis.call('INCRBY', KEYS[4], n)
local out = {}
local bodies = {}
local delayed = {}
local remember = {}
local ready = { {}, {}, {}, {}, {} }
local anyReady = false
for i = 0, n - 1 do
  local duplicate = 0
  if window > 0 and field(i, 4) == '1' then
    local id = field(i, 0)
    if seen[id] then
      duplicate = 1
    else
      seen[id] = true
      remember[#remember + 1] = id
    end
  end
  out[i + 1] = duplicate
  if duplicate == 0 then
    local level = tonumber(field(i, 2))
    local key = level .. (last - n + i + 1)
    bodies[#bodies + 1] = key
    bodies[#bodies + 1] = field(i, 1)
    local delay = tonumber(field(i, 3))
    if delay > 0 then
      delayed[#delayed + 1] = now + delay
      delayed[#delayed + 1] = key
    else
      local list = ready[level + 1]
      list[#list + 1] = key
      anyReady = true
    end
  end
end
if #remember > 0 then
  bulk('SADD', KEYS[3], remember)
  -- The dedupe keys of a queue nobody publishes to any more go away by themselves.
  redis.call('PEXPIRE', KEYS[3], 2 * window)
end
if #bodies > 0 then
  bulk('HSET', KEYS[1], bodies)
end
if #delayed > 0 then
  bulk('ZADD', KEYS[2], delayed)
end
for level = 0, 4 do
  if #ready[level + 1] > 0 then
    bulk('LPUSH', KEYS[6 + level], ready[level + 1])
  end
end
-- Delayed ones wake consumers too: an idle consumer must learn the new earliest due time.
if (anyReady or #delayed > 0) and redis.call('LLEN', KEYS[5]) == 0 then
  redis.call('LPUSH', KEYS[5], '1')
end
return out
