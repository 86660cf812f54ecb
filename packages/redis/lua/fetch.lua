-- fetch.lua: hand out up to ARGV[1] ready messages of one queue under a lease, in one call.
--
-- First moves delayed messages that are due to the back of their waiting list, and returns
-- messages whose lease expired (their consumer died or stalled) to the front of theirs, keeping
-- their delivery count. Then takes messages highest priority first, FIFO within a level, counts
-- the delivery and records each in the active set under the member "<key>#<deliveries>", scored
-- by its lease deadline: that member is the delivery's token, so a settlement by a consumer that
-- lost the lease finds nothing to remove and changes nothing.
--
-- KEYS[1]      active zset      "<key>#<deliveries>", score = lease deadline (ms)
-- KEYS[2]      body hash        message key -> body
-- KEYS[3]      delayed zset     message key, score = due time (ms)
-- KEYS[4]      wake list        token a waiting consumer blocks on
-- KEYS[5..9]   waiting lists    priority 0..4 (entries "<key>" or "<key>#<deliveries>")
-- ARGV[1]      how many messages to take (0: only promote and reap)
-- ARGV[2]      lease in ms
-- Returns      { nextMs, member, body, member, body, ... }: nextMs is how long until the next
--              delayed message is due or the next lease expires (-1: neither), set only when
--              fewer than ARGV[1] messages were ready (0 otherwise)
--
-- Fused with a job store (FUSED, the jobs_fused_ commands; KEYS[10] is the store's base): each
-- message written by core with a record (its body starts {"v":1,"id":"<id>","gen":<gen>,) is
-- also claimed in the store, in this same call (claimOne, store/common.lua).
-- ARGV[3]      the claim's time to live in ms
-- ARGV[4]      the worker's id
-- Returns      { nextMs, member, body, claim, member, body, claim, ... }: claim is "" (not
--              claimed here: core claims), "c:<fence>:<claims>:<cancelRequested>", "s",
--              "s:<status>" or "b:<retryInMs>"

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local want = tonumber(ARGV[1])
local LIMIT = 1000

local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, LIMIT)
if #due > 0 then
  for _, key in ipairs(due) do
    redis.call('LPUSH', KEYS[5 + tonumber(string.sub(key, 1, 1))], key)
  end
  redis.call('ZREM', KEYS[3], unpack(due))
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, LIMIT)
if #expired > 0 then
  -- Pushed latest first, so the one that expired first ends up at the very front.
  for i = #expired, 1, -1 do
    local member = expired[i]
    redis.call('RPUSH', KEYS[5 + tonumber(string.sub(member, 1, 1))], member)
  end
  redis.call('ZREM', KEYS[1], unpack(expired))
end

-- The claim of a fused fetch, encoded (see above).
local function fusedClaim(body)
  -- Core writes "v", "id" and "gen" first in a body with a generation (encodeEnvelope): anything
  -- else (no generation, another order) is left to core, which claims it after parsing.
  local id, gen = string.match(body, '^{"v":1,"id":"([^"\\]+)","gen":(%d+),')
  if not id then return '' end
  -- Not due yet: core defers it on receipt without running it, so it must not hold a claim meanwhile.
  -- The first "runAt" is the envelope's: the fields before it are core's, with no object of the user's.
  local runAt = tonumber(string.match(body, '"runAt":(%d+)'))
  if runAt and runAt > now then return '' end
  local c = claimOne(id, gen, ARGV[3], ARGV[4], '')
  if c[1] == 'claimed' then return 'c:' .. c[2] .. ':' .. c[3] .. ':' .. c[4] end
  if c[1] == 'busy' then return 'b:' .. c[2] end
  if c[2] then return 's:' .. c[2] end
  return 's'
end

local out = { 0 }
local got = 0
local level = 4
if want > 0 then
  local deadline = now + tonumber(ARGV[2])
  local keys = {}
  local members = {}
  while got < want and level >= 0 do
    local items = redis.call('RPOP', KEYS[5 + level], want - got)
    if items then
      for _, item in ipairs(items) do
        local hash = string.find(item, '#', 1, true)
        local key, count
        if hash then
          key = string.sub(item, 1, hash - 1)
          count = tonumber(string.sub(item, hash + 1)) + 1
        else
          key = item
          count = 1
        end
        got = got + 1
        keys[got] = key
        members[got] = key .. '#' .. count
      end
    end
    if got < want then
      level = level - 1
    end
  end
  if got > 0 then
    local bodies = redis.call('HMGET', KEYS[2], unpack(keys))
    local scored = {}
    for i = 1, got do
      -- A body can only be missing if someone deleted keys by hand: skip such a message.
      if bodies[i] then
        out[#out + 1] = members[i]
        out[#out + 1] = bodies[i]
        if FUSED then
          out[#out + 1] = fusedClaim(bodies[i])
        end
        scored[#scored + 1] = deadline
        scored[#scored + 1] = members[i]
      end
    end
    if #scored > 0 then
      redis.call('ZADD', KEYS[1], unpack(scored))
    end
  end
end

if got < want or want == 0 then
  local next = -1
  local d = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if d[2] then
    next = tonumber(d[2])
  end
  local a = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if a[2] and (next < 0 or tonumber(a[2]) < next) then
    next = tonumber(a[2])
  end
  if next >= 0 then
    next = math.max(0, next - now)
  end
  out[1] = next
elseif redis.call('LLEN', KEYS[4]) == 0 then
  -- More may be waiting: pass the wake-up on to another blocked consumer.
  for l = level, 0, -1 do
    if redis.call('LLEN', KEYS[5 + l]) > 0 then
      redis.call('LPUSH', KEYS[4], '1')
      break
    end
  end
end
return out
