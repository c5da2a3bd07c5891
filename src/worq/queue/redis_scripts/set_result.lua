-- Finish a task: store its result and hand it to every pending task that
-- takes it, queueing those whose arguments are now complete. A task that
-- ignores its result is just forgotten.
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] deps set
-- KEYS[4] processing zset
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] result message
-- ARGV[4] result timeout (ms)   ARGV[5] lease token ("": unconditional)
-- Returns 1, or 0 (nothing changed) when the task is not running under the lease.
local prefix, id, message = ARGV[1], ARGV[2], ARGV[3]
if ARGV[5] ~= '' and not holds(prefix, id, ARGV[5]) then
    return 0
end
local keep = redis.call('HGET', KEYS[1], 'keep')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[4], id)
if keep == '0' then
    return 1
end
redis.call('DEL', KEYS[2])
redis.call('RPUSH', KEYS[2], message)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
for _, dep in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    local task = prefix .. 'task:' .. dep
    if redis.call('HGET', task, 'status') == 'pending' then
        redis.call('HSET', task, 'arg:' .. id, message)
        if redis.call('HINCRBY', task, 'waiting', -1) <= 0 then
            schedule(prefix, dep, 0)
        end
    end
end
redis.call('DEL', KEYS[3])
return 1
