-- Drop entries from the failed-task registry.
-- KEYS[1] registry zset   KEYS[2] registry hash
-- ARGV[1] key prefix  ARGV[2] "all", or "" to drop just ARGV[3], ARGV[4], ...
-- Returns the ids dropped.
local ids = {}
if ARGV[2] == 'all' then
    ids = redis.call('ZRANGE', KEYS[1], 0, -1)
else
    for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local dropped = {}
for _, id in ipairs(ids) do
    if redis.call('ZREM', KEYS[1], id) == 1 then
        redis.call('HDEL', KEYS[2], id)
        dropped[#dropped + 1] = id
    end
end
return dropped
