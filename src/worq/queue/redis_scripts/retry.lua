-- Queue a running task again, now or after a delay.
-- KEYS[1] processing zset
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] lease token   ARGV[4] delay (ms)
-- Returns 1, or 0 (nothing changed) when the task is not running under the lease.
if not holds(ARGV[1], ARGV[2], ARGV[3]) then
    return 0
end
redis.call('ZREM', KEYS[1], ARGV[2])
schedule(ARGV[1], ARGV[2], tonumber(ARGV[4]))
return 1
