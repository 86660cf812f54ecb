-- common.lua: put in front of every store script (see src/store/keys.ts for the key layout).
--
-- STORE_BASE (set by the script's header: KEYS[1] for the store's scripts, the last key for the
--          broker's fused fetch and settle) is the store's base "<prefix>:{<prefix>:store}:"; every key a script touches is the base
--          and a part, so all of them share the hash tag, hence one Redis Cluster slot.
-- A record is the hash "job:<id>" with the fields of StoredJob, plus "seq" (its insertion order).
-- Index sorted sets, scored by seq: "all", "status:<status>", "queue:<queue>", "name:<name>",
-- "tag:<tag>". "unpublished": ids neither terminal nor published, scored by updatedAt.
-- "finished:<status>:<name>": terminal records, scored by finishedAt (retention).
-- Optional arguments are "" (absent) or "=" followed by the value.

local base = STORE_BASE
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local UNPUBLISHED = base .. 'unpublished'
local CHANNEL = base .. 'finished'
local TERMINAL = { succeeded = true, dead = true, cancelled = true, discarded = true }
local RUNNABLE = { waiting = true, retrying = true, scheduled = true }

local function jobKey(id)
  return base .. 'job:' .. id
end

-- An optional argument: nil when absent.
local function opt(value)
  if value == '' then return nil end
  return string.sub(value, 2)
end

-- Sets an optional field when the argument is present.
local function setOpt(key, field, value)
  local v = opt(value)
  if v ~= nil then redis.call('HSET', key, field, v) end
end

-- The member of a record in a "finished:<status>:<name>" index: its seq, zero-padded so that ties
-- of finishedAt sort by insertion, then its id.
local function finishedMember(id, seq)
  return string.format('%015d', tonumber(seq)) .. id
end

-- Moves the record to status `to`, keeping the status index (scored by seq) and the retention
-- index of terminal records (scored by finishedAt, which every move to a terminal status sets to
-- now) in step.
local function setStatus(key, id, from, to, seq)
  if from ~= to then
    redis.call('ZREM', base .. 'status:' .. from, id)
    redis.call('ZADD', base .. 'status:' .. to, seq, id)
  end
  if TERMINAL[from] or TERMINAL[to] then
    local name = redis.call('HGET', key, 'name')
    if TERMINAL[from] and from ~= to then redis.call('ZREM', base .. 'finished:' .. from .. ':' .. name, finishedMember(id, seq)) end
    if TERMINAL[to] then redis.call('ZADD', base .. 'finished:' .. to .. ':' .. name, now, finishedMember(id, seq)) end
  end
  redis.call('HSET', key, 'status', to)
end

-- Keeps the unpublished index after a write at `now`.
local function syncUnpublished(id, status, published)
  if published == '0' and not TERMINAL[status] then
    redis.call('ZADD', UNPUBLISHED, now, id)
  else
    redis.call('ZREM', UNPUBLISHED, id)
  end
end

-- Tells watchers (every store's subscriber connection) that the job reached a terminal status.
local function ended(id, status)
  redis.call('PUBLISH', CHANNEL, status .. ' ' .. id)
end

-- Tokens: insert, claim and finish requests carry one, unique per request, kept in the record
-- ("insertToken", "claimToken", "finishToken"), so that a replay of the same call (ioredis resends a
-- command whose reply a dropped connection lost; it ran the first time) answers what the first
-- run did instead of reporting a conflict with itself. "" carries none (no replay check).
--
-- Claims one job for one delivery (ClaimOutcome in packages/core/src/store.ts): returns
-- {'claimed', fence, claims, cancelRequested (0/1)}, {'stale'} (no record), {'stale', status} or
-- {'busy', retryInMs}.
local function claimOne(id, gen, ttlMs, worker, token)
  local key = jobKey(id)
  local r = redis.call('HMGET', key, 'status', 'gen', 'claimExpiresAt', 'seq', 'published', 'cancelRequested',
    'claimToken', 'fence', 'claims')
  local status = r[1]
  -- A replay of this very claim (its reply was lost with a connection): the claim it made.
  if status == 'active' and token ~= '' and r[7] == token then
    return { 'claimed', tonumber(r[8]), tonumber(r[9]), tonumber(r[6]) }
  end
  if not status then
    return { 'stale' }
  elseif tonumber(r[2]) ~= tonumber(gen) or TERMINAL[status] then
    return { 'stale', status }
  elseif status == 'active' and tonumber(r[3]) > now then
    return { 'busy', tonumber(r[3]) - now }
  elseif status ~= 'active' and not RUNNABLE[status] then
    return { 'stale', status }
  end
  local fence = redis.call('HINCRBY', key, 'fence', 1)
  local claims = redis.call('HINCRBY', key, 'claims', 1)
  setStatus(key, id, status, 'active', r[4])
  redis.call('HSET', key, 'claimExpiresAt', now + tonumber(ttlMs), 'worker', worker, 'startedAt', now, 'updatedAt', now,
    'claimToken', token)
  syncUnpublished(id, 'active', r[5])
  return { 'claimed', fence, claims, tonumber(r[6]) }
end

-- Ends one attempt, only while the record is active under fence (FinishRequest); optional
-- arguments as above. Returns 1 written, 0 not active under fence (nothing written).
local function finishOne(id, fence, to, resultJson, errorJson, attempt, runAt, token)
  local key = jobKey(id)
  local r = redis.call('HMGET', key, 'status', 'fence', 'claims', 'seq', 'published', 'finishToken')
  if r[1] ~= 'active' or tonumber(r[2]) ~= tonumber(fence) then
    -- A replay of this very finish (its reply was lost with a connection) committed the first time.
    if token ~= '' and r[6] == token and tonumber(r[2]) == tonumber(fence) then return 1 end
    return 0
  end
  setStatus(key, id, 'active', to, r[4])
  redis.call('HSET', key, 'updatedAt', now, 'claimExpiresAt', 0, 'cancelRequested', 0, 'finishToken', token)
  if to == 'waiting' then
    redis.call('HSET', key, 'claims', math.max(0, tonumber(r[3]) - 1))
    syncUnpublished(id, to, r[5])
  elseif to == 'retrying' then
    redis.call('HINCRBY', key, 'gen', 1)
    redis.call('HSET', key, 'published', 0, 'claims', 0)
    setOpt(key, 'attempt', attempt)
    setOpt(key, 'runAt', runAt)
    setOpt(key, 'errorJson', errorJson)
    syncUnpublished(id, to, '0')
  else
    redis.call('HSET', key, 'finishedAt', now)
    setOpt(key, 'resultJson', resultJson)
    setOpt(key, 'errorJson', errorJson)
    syncUnpublished(id, to, r[5])
    ended(id, to)
  end
  return 1
end
