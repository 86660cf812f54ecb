-- lease.lua: takes or renews the lease `name` for `owner` for ttlMs ("lease:<name>", PX).
-- ARGV     name, owner, ttlMs
-- Returns  1 held by owner now, 0 held by another owner

local key = base .. 'lease:' .. ARGV[1]
local holder = redis.call('GET', key)
if holder and holder ~= ARGV[2] then return 0 end
redis.call('SET', key, ARGV[2], 'PX', ARGV[3])
return 1
