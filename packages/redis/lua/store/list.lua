-- list.lua: one page of records matching every filter, oldest enqueue first.
-- ARGV     after (the cursor: a seq, "0" for the first page), limit, budget (most index entries
--          read per call), status (opt), then the index of each other filter ("queue:<q>",
--          "name:<n>", "tag:<t>").
-- A status in INDEXED is the index "status:<s>"; waiting and active are "open" plus a test of the
-- status field, succeeded a test of the field alone; no index at all: "all".
-- The smallest of the filters' indexes drives the walk; the others are tested per id (ZSCORE).
-- Returns  {cursor, record, record, …}: each record an HGETALL; cursor "" on the last page, else
--          the seq to pass as `after` (the last record returned, or the last entry read when the
--          budget ran out first: a page may then hold fewer than `limit` records).

local after = ARGV[1]
local limit = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local indexes = {}
local status = opt(ARGV[4])
local test = nil -- the status a record must have, when no index says it
if status ~= nil then
  if INDEXED[status] then
    indexes[1] = base .. 'status:' .. status
  else
    test = status
    if not TERMINAL[status] then indexes[1] = OPEN end
  end
end
for i = 5, #ARGV do indexes[#indexes + 1] = base .. ARGV[i] end
if #indexes == 0 then indexes[1] = base .. 'all' end
local drive = 1
local smallest = nil
for i, index in ipairs(indexes) do
  local n = redis.call('ZCARD', index)
  if smallest == nil or n < smallest then drive, smallest = i, n end
end

local out = { '' }
local found = 0
local read = 0
local returned = after -- seq of the last record returned
local last = after -- seq of the last entry read
while read < budget do
  local entries = redis.call('ZRANGEBYSCORE', indexes[drive], '(' .. last, '+inf', 'WITHSCORES', 'LIMIT', 0,
    math.min(budget - read, 1000))
  if #entries == 0 then return out end -- the index is read to its end: the last page
  for j = 1, #entries, 2 do
    local id = entries[j]
    read = read + 1
    local match = true
    for i, index in ipairs(indexes) do
      if i ~= drive and not redis.call('ZSCORE', index, id) then
        match = false
        break
      end
    end
    if match and test ~= nil and redis.call('HGET', jobKey(id), 'status') ~= test then match = false end
    if match then
      if found == limit then -- one match more than the page holds: there is a next page
        out[1] = returned
        return out
      end
      found = found + 1
      out[#out + 1] = redis.call('HGETALL', jobKey(id))
      returned = entries[j + 1]
    end
    last = entries[j + 1]
  end
end
out[1] = last -- the budget ran out: go on after the last entry read
return out
