-- The failed-task registry's entries, the latest first, once the lapsed ones are dropped.
-- KEYS[1] registry zset   KEYS[2] registry hash
-- ARGV[1] key prefix  ARGV[2] how many at most
-- Returns a flat list: id, entry, id, entry, ...
drop_lapsed_failures(ARGV[1], now_ms())
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #ids == 0 then
    return {}
end
local entries = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
    if entries[i] then
        out[#out + 1] = id
        out[#out + 1] = entries[i]
    end
end
return out
