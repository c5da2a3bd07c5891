-- Drop every task not yet started (queued, delayed, or waiting for its
-- arguments), then the pending tasks waiting on them, level by level.
-- Running tasks are left alone, even when a wake-up copy of their id sits in
-- the queue list. The cascade goes through a work list, at most ARGV[3]
-- tasks per call, so that any depth completes without deep recursion or one
-- long call; the caller repeats with ARGV[2] = "continue" until none is left.
-- KEYS[1] queue list   KEYS[2] delayed zset   KEYS[3] wakes counter
-- KEYS[4] deferred set   KEYS[5] dropping list (the work list)
-- ARGV[1] key prefix   ARGV[2] "start" or "continue"   ARGV[3] limit
-- Returns {how many not-started tasks this purge found (0 when continuing),
--          how many tasks are left on the work list}.
local prefix, limit = ARGV[1], tonumber(ARGV[3])
local found = 0
if ARGV[2] == 'start' then
    local ids = redis.call('LRANGE', KEYS[1], 0, -1)
    for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do ids[#ids + 1] = id end
    for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do ids[#ids + 1] = id end
    local seen = {}
    for _, id in ipairs(ids) do
        if not seen[id] then
            seen[id] = true
            local status = redis.call('HGET', key.task(prefix, id), 'status')
            if status and NOT_STARTED[status] then
                found = found + 1
                redis.call('RPUSH', KEYS[5], id)
            end
        end
    end
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
end
for _ = 1, limit do
    local id = redis.call('LPOP', KEYS[5])
    if not id then break end
    local task = key.task(prefix, id)
    local f = redis.call('HMGET', task, 'status', 'deferred')
    if f[1] and NOT_STARTED[f[1]] then
        if f[2] == '1' then
            release_arguments(prefix, task)
        end
        redis.call('DEL', task)
        redis.call('ZREM', KEYS[2], id)
        redis.call('SREM', KEYS[4], id)
        local deps = key.deps(prefix, id)
        for _, dep in ipairs(redis.call('SMEMBERS', deps)) do
            redis.call('RPUSH', KEYS[5], dep)
        end
        redis.call('DEL', deps)
    end
end
return {found, redis.call('LLEN', KEYS[5])}
