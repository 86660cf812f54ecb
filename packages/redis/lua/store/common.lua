-- common.lua: put in front of every store script (see src/store/keys.ts for the key layout).
--
-- STORE_BASE (set by the script's header: KEYS[1] for the store's scripts, the last key for the
--          broker's fused fetch and settle) is the store's base "<prefix>:{<prefix>:store}:"; every key a script touches is the base
--          and a part, so all of them share the hash tag, hence one Redis Cluster slot.
-- A record is the hash "job:<id>" with the fields of StoredJob, plus "seq" (its insertion order).
-- Index sorted sets, scored by seq, written once at insert and removed once at prune: "all",
-- "queue:<queue>", "name:<name>", "tag:<tag>". Status indexes, kept lean because every claim and
-- every finish pays for them (see INDEXED): "open" holds every record that is not terminal;
-- "status:<status>" exists only for the statuses in INDEXED (those a record passes through rarely
-- and an operator looks for); waiting, active and succeeded have none: list.lua finds them by
-- walking "open" (waiting, active) or "all" (succeeded) and reading the status field.
-- "unpublished": ids neither terminal nor published, scored by updatedAt; a record is in it
-- exactly when its "published" field is "0" and its status not terminal.
-- "finished:<status>:<name>": terminal records, scored by finishedAt (retention).
-- Optional arguments are "" (absent) or "=" followed by the value.

local base = STORE_BASE
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local UNPUBLISHED = base .. 'unpublished'
local CHANNEL = base .. 'finished'
local TERMINAL = { succeeded = true, dead = true, cancelled = true, discarded = true }
local RUNNABLE = { waiting = true, retrying = true, scheduled = true }
-- The statuses with a "status:<status>" index.
local INDEXED = { blocked = true, scheduled = true, retrying = true, dead = true, cancelled = true, discarded = true }
local OPEN = base .. 'open'

local function jobKey(id)
  return base .. 'job:' .. id
end

-- An optional argument: nil when absent.
local function opt(value)
  if value == '' then return nil end
  return string.sub(value, 2)
end

-- Appends field and value to the list of an HSET's arguments when the argument is present.
local function addOpt(fields, field, value)
  local v = opt(value)
  if v ~= nil then
    fields[#fields + 1] = field
    fields[#fields + 1] = v
  end
end

-- The member of a record in a "finished:<status>:<name>" index: its seq, zero-padded so that ties
-- of finishedAt sort by insertion, then its id.
local function finishedMember(id, seq)
  return string.format('%015d', tonumber(seq)) .. id
end

-- Keeps the indexes of a record (of job `name`, inserted as `seq`) moving from status `from` to
-- `to`: "open", the "status:<status>" indexes of INDEXED statuses and the retention index of
-- terminal records (scored by finishedAt, which every move to a terminal status sets to now). The
-- caller writes the status field itself (in its own HSET).
local function setStatus(id, from, to, seq, name)
  if from ~= to then
    if INDEXED[from] then redis.call('ZREM', base .. 'status:' .. from, id) end
    if INDEXED[to] then redis.call('ZADD', base .. 'status:' .. to, seq, id) end
    if TERMINAL[to] and not TERMINAL[from] then
      redis.call('ZREM', OPEN, id)
    elseif TERMINAL[from] and not TERMINAL[to] then
      redis.call('ZADD', OPEN, seq, id)
    end
    if TERMINAL[from] then redis.call('ZREM', base .. 'finished:' .. from .. ':' .. name, finishedMember(id, seq)) end
  end
  if TERMINAL[to] then redis.call('ZADD', base .. 'finished:' .. to .. ':' .. name, now, finishedMember(id, seq)) end
end

-- Keeps the unpublished index after a write at `now` that leaves the record in `status` with
-- `published` ("0"/"1"). A published record is never in the index, so it costs nothing.
local function syncUnpublished(id, status, published)
  if published ~= '0' then return end
  if TERMINAL[status] then
    redis.call('ZREM', UNPUBLISHED, id)
  else
    redis.call('ZADD', UNPUBLISHED, now, id)
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
    'claimToken', 'fence', 'claims', 'name')
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
  local fence = tonumber(r[8]) + 1
  local claims = tonumber(r[9]) + 1
  setStatus(id, status, 'active', r[4], r[10])
  redis.call('HSET', key, 'status', 'active', 'fence', fence, 'claims', claims, 'claimExpiresAt', now + tonumber(ttlMs),
    'worker', worker, 'startedAt', now, 'updatedAt', now, 'claimToken', token)
  syncUnpublished(id, 'active', r[5])
  return { 'claimed', fence, claims, tonumber(r[6]) }
end

-- Ends one attempt, only while the record is active under fence (FinishRequest); optional
-- arguments as above. Returns 1 written, 0 not active under fence (nothing written).
local function finishOne(id, fence, to, resultJson, errorJson, attempt, runAt, token)
  local key = jobKey(id)
  local r = redis.call('HMGET', key, 'status', 'fence', 'claims', 'seq', 'published', 'finishToken', 'name', 'gen')
  if r[1] ~= 'active' or tonumber(r[2]) ~= tonumber(fence) then
    -- A replay of this very finish (its reply was lost with a connection) committed the first time.
    if token ~= '' and r[6] == token and tonumber(r[2]) == tonumber(fence) then return 1 end
    return 0
  end
  setStatus(id, 'active', to, r[4], r[7])
  local fields = { 'status', to, 'updatedAt', now, 'claimExpiresAt', 0, 'cancelRequested', 0, 'finishToken', token }
  local published = r[5]
  if to == 'waiting' then
    fields[#fields + 1] = 'claims'
    fields[#fields + 1] = math.max(0, tonumber(r[3]) - 1)
  elseif to == 'retrying' then
    published = '0'
    for _, v in ipairs({ 'gen', tonumber(r[8]) + 1, 'published', 0, 'claims', 0 }) do fields[#fields + 1] = v end
    addOpt(fields, 'attempt', attempt)
    addOpt(fields, 'runAt', runAt)
    addOpt(fields, 'errorJson', errorJson)
  else
    fields[#fields + 1] = 'finishedAt'
    fields[#fields + 1] = now
    addOpt(fields, 'resultJson', resultJson)
    addOpt(fields, 'errorJson', errorJson)
  end
  redis.call('HSET', key, unpack(fields))
  syncUnpublished(id, to, published)
  if TERMINAL[to] then ended(id, to) end
  return 1
end
