-- Queue a running task again, now or after a delay. On a retry of a call
-- whose reply was lost (ARGV[5] = "1"), a task queued again but still
-- carrying the caller's lease token (no new lease since) was queued by that
-- call: the answer is 1 again.
-- KEYS[1] processing zset
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] lease token   ARGV[4] delay (ms)
-- ARGV[5] "1" on a retry
-- Returns 1, or 0 (nothing changed) when the task is not running under the lease.
if not holds(ARGV[1], ARGV[2], ARGV[3]) then
    if ARGV[5] == '1' then
        local f = redis.call('HMGET', key.task(ARGV[1], ARGV[2]), 'status', 'lease')
        if f[2] == ARGV[3] and (f[1] == 'enqueued' or f[1] == 'delayed') then
            return 1
        end
    end
    return 0
end
redis.call('ZREM', KEYS[1], ARGV[2])
schedule(ARGV[1], ARGV[2], tonumber(ARGV[4]))
return 1
