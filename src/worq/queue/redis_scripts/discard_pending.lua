-- Drop every queued task, and the pending tasks waiting on them.
-- KEYS[1] queue list
-- ARGV[1] key prefix
-- Returns how many queued tasks were dropped.
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local seen = {}
for _, id in ipairs(ids) do
    drop_tree(ARGV[1], id, seen)
end
redis.call('DEL', KEYS[1])
return #ids
