-- Drop every waiting task (queued or delayed), and the pending tasks waiting on them.
-- KEYS[1] queue list   KEYS[2] delayed zset   KEYS[3] wakes counter
-- ARGV[1] key prefix
-- Returns how many waiting tasks were dropped.
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do ids[#ids + 1] = id end
local seen, dropped = {}, 0
for _, id in ipairs(ids) do
    if not seen[id] then dropped = dropped + 1 end
    drop_tree(ARGV[1], id, seen)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return dropped
