-- common.lua: put in front of every store script (see src/store/keys.ts for the key layout).
--
-- KEYS[1]  the store's base "<prefix>:{<prefix>:store}:"; every key a script touches is the base
--          and a part, so all of them share the hash tag, hence one Redis Cluster slot.
-- A record is the hash "job:<id>" with the fields of StoredJob, plus "seq" (its insertion order).
-- Index sorted sets, scored by seq: "all", "status:<status>", "queue:<queue>", "name:<name>",
-- "tag:<tag>". "unpublished": ids neither terminal nor published, scored by updatedAt.
-- "finished:<status>:<name>": terminal records, scored by finishedAt (retention).
-- Optional arguments are "" (absent) or "=" followed by the value.

local base = KEYS[1]
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
