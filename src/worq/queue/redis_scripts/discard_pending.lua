-- Drop every waiting task (queued or delayed), and the pending tasks waiting on them.
-- KEYS[1] queue list   KEYS[2] delayed zset
-- ARGV[1] key prefix
-- Returns how many waiting tasks were dropped.
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do ids[#ids + 1] = id end
local seen = {}
for _, id in ipairs(ids) do
    drop_tree(ARGV[1], id, seen)
end
redis.call('DEL', KEYS[1], KEYS[2])
return #ids
