-- Store a task's result and hand it to every pending task that takes it,
-- queueing those whose arguments are now complete.
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] deps set
-- KEYS[4] queue list  KEYS[5] processing zset
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] result message
-- ARGV[4] result timeout (ms)
-- Returns the number of dependants queued.
local prefix, id, message = ARGV[1], ARGV[2], ARGV[3]
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('RPUSH', KEYS[2], message)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
redis.call('ZREM', KEYS[5], id)
local queued = 0
for _, dep in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    local task = prefix .. 'task:' .. dep
    if redis.call('HGET', task, 'status') == 'pending' then
        redis.call('HSET', task, 'arg:' .. id, message)
        -- it no longer lapses with this argument; running ones re-arm it
        redis.call('PERSIST', task)
        redis.call('PERSIST', prefix .. 'deps:' .. dep)
        if redis.call('HINCRBY', task, 'waiting', -1) <= 0 then
            redis.call('HSET', task, 'status', 'enqueued')
            redis.call('LPUSH', KEYS[4], dep)
            queued = queued + 1
        end
    end
end
redis.call('DEL', KEYS[3])
return queued
