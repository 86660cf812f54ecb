-- unpublished.lua: records not terminal, not blocked or active, whose gen is unpublished and
-- unchanged for olderThanMs by the server's clock, oldest write first.
-- ARGV     olderThanMs, limit, budget (most index entries read per call)
-- Returns  the records (HGETALL each)

local before = now - tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local out = {}
local offset = 0
while #out < limit and offset < budget do
  local ids = redis.call('ZRANGEBYSCORE', UNPUBLISHED, '-inf', before, 'LIMIT', offset, math.min(budget - offset, 500))
  if #ids == 0 then break end
  offset = offset + #ids
  for _, id in ipairs(ids) do
    local key = jobKey(id)
    if RUNNABLE[redis.call('HGET', key, 'status')] then
      out[#out + 1] = redis.call('HGETALL', key)
      if #out == limit then break end
    end
  end
end
return out
