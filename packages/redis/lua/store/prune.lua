-- prune.lua: removes the records one retention rule selects: of job `name` in terminal `status`,
-- those finished more than olderThanMs ago by the server's clock or beyond the `keep` most
-- recently finished (whichever removes more), oldest finish first, at most `limit`.
-- ARGV     name, status, olderThanMs (opt), keep (opt), limit
-- Returns  how many records were removed

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
local members = redis.call('ZRANGE', index, 0, doomed - 1)
for _, member in ipairs(members) do
  local id = string.sub(member, 16)
  local key = jobKey(id)
  local r = redis.call('HMGET', key, 'queue', 'tags')
  if r[1] then
    redis.call('ZREM', base .. 'all', id)
    redis.call('ZREM', base .. 'status:' .. status, id)
    redis.call('ZREM', base .. 'queue:' .. r[1], id)
    redis.call('ZREM', base .. 'name:' .. name, id)
    for _, tag in ipairs(cjson.decode(r[2])) do redis.call('ZREM', base .. 'tag:' .. tag, id) end
    redis.call('ZREM', UNPUBLISHED, id)
    redis.call('DEL', key)
  end
  redis.call('ZREM', index, member)
end
return #members
