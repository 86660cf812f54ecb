-- progress.lua: sets the progress of a job active under fence.
-- ARGV     id, fence, progressJson
-- Returns  1 written, 0 not active under fence (nothing written)

local id = ARGV[1]
local key = jobKey(id)
local r = redis.call('HMGET', key, 'status', 'fence', 'published')
if r[1] ~= 'active' or tonumber(r[2]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', key, 'progressJson', ARGV[3], 'updatedAt', now)
syncUnpublished(id, 'active', r[3])
return 1
