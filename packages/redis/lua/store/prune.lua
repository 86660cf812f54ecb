-- prune.lua: removes the records one retention rule selects: of job `name` in terminal `status`,
-- those finished more than olderThanMs ago by the server's clock or beyond the `keep` most
-- recently finished (whichever removes more), oldest finish first, at most `limit`.
-- ARGV     name, status, olderThanMs (opt), keep (opt), limit
-- Returns  how many records were removed
-- Each index loses all its doomed ids in one command (chunked), so pruning costs about one read per
-- record plus a few commands per call. A terminal record is in neither "open" nor "unpublished".

local name = ARGV[1]
local status = ARGV[2]
local index = base .. 'finished:' .. status .. ':' .. name
local limit = tonumber(ARGV[5])
-- Both rules select a prefix of the index in finish order: remove the longer one.
local doomed = 0
local older = opt(ARGV[3])
if older ~= nil then doomed = redis.call('ZCOUNT', index, '-inf', '(' .. (now - tonumber(older))) end
local keep = opt(ARGV[4])
if keep ~= nil then doomed = math.max(doomed, redis.call('ZCARD', index) - tonumber(keep)) end
doomed = math.min(doomed, limit)
if doomed <= 0 then return 0 end
local CHUNK = 4000
local members = redis.call('ZRANGE', index, 0, doomed - 1)
local ids, keys = {}, {}
-- Index key -> the ids to remove from it.
local from = { [base .. 'all'] = ids, [base .. 'name:' .. name] = ids }
if INDEXED[status] then from[base .. 'status:' .. status] = ids end
local function drop(indexKey, id)
  local list = from[indexKey]
  if not list then
    list = {}
    from[indexKey] = list
  end
  list[#list + 1] = id
end
for _, member in ipairs(members) do
  local id = string.sub(member, 16)
  local key = jobKey(id)
  local r = redis.call('HMGET', key, 'queue', 'tags')
  if r[1] then
    ids[#ids + 1] = id
    keys[#keys + 1] = key
    drop(base .. 'queue:' .. r[1], id)
    if r[2] ~= '[]' then
      for _, tag in ipairs(cjson.decode(r[2])) do drop(base .. 'tag:' .. tag, id) end
    end
  end
end
for indexKey, list in pairs(from) do
  for j = 1, #list, CHUNK do redis.call('ZREM', indexKey, unpack(list, j, math.min(j + CHUNK - 1, #list))) end
end
for j = 1, #keys, CHUNK do redis.call('DEL', unpack(keys, j, math.min(j + CHUNK - 1, #keys))) end
redis.call('ZREMRANGEBYRANK', index, 0, #members - 1)
return #members
