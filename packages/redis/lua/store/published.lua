-- published.lua: marks message `gen` of each job published (no-op for another gen, or no record).
-- ARGV  pairs: id, gen

for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  local key = jobKey(id)
  local gen = redis.call('HGET', key, 'gen')
  if gen and tonumber(gen) == tonumber(ARGV[i + 1]) then
    redis.call('HSET', key, 'published', 1)
    redis.call('ZREM', UNPUBLISHED, id)
  end
end
return 0
