-- unpublished.lua: records not terminal, not blocked or active, whose gen is unpublished and
-- unchanged for olderThanMs by the server's clock; oldest first: longest unchanged (updatedAt),
-- then first inserted (seq).
-- ARGV     olderThanMs, limit, budget (most index entries read per call)
-- Returns  the records (HGETALL each)

local before = now - tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local found = {}
local read = 0
local done = false
while not done and read < budget do
  local entries = redis.call('ZRANGEBYSCORE', UNPUBLISHED, '-inf', before, 'WITHSCORES', 'LIMIT', read,
    math.min(budget - read, 500))
  if #entries == 0 then break end
  for j = 1, #entries, 2 do
    local score = tonumber(entries[j + 1])
    -- Enough, unless the next entry ties with the last one found (ties are ordered by seq below).
    if #found >= limit and score ~= found[#found].score then
      done = true
      break
    end
    read = read + 1
    local r = redis.call('HMGET', jobKey(entries[j]), 'status', 'seq')
    if RUNNABLE[r[1]] then found[#found + 1] = { id = entries[j], score = score, seq = tonumber(r[2]) } end
  end
end
table.sort(found, function(a, b)
  if a.score ~= b.score then return a.score < b.score end
  return a.seq < b.seq
end)
local out = {}
for i = 1, math.min(limit, #found) do out[i] = redis.call('HGETALL', jobKey(found[i].id)) end
return out
