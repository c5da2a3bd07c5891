-- Drop every task not yet started (queued, delayed, or waiting for its
-- arguments), and the pending tasks waiting on them.
-- KEYS[1] queue list   KEYS[2] delayed zset   KEYS[3] wakes counter
-- KEYS[4] deferred set
-- ARGV[1] key prefix
-- Returns how many tasks were dropped.
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do ids[#ids + 1] = id end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do ids[#ids + 1] = id end
local counted, dropped = {}, 0
for _, id in ipairs(ids) do  -- wake-up calls and repeats name no other task
    if not counted[id] and redis.call('EXISTS', ARGV[1] .. 'task:' .. id) == 1 then
        counted[id] = true
        dropped = dropped + 1
    end
end
local seen = {}
for _, id in ipairs(ids) do
    drop_tree(ARGV[1], id, seen)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return dropped
