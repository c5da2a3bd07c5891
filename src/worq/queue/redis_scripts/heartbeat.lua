-- Renew a running task's lease. Safe to run twice: a retry of a call whose
-- reply was lost renews the lease again, from the retry's time.
-- KEYS[1] processing zset
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] lease token ("" any)
-- ARGV[4] lease (ms)
-- Returns 1, or 0 when the task is not running under that lease.
if not holds(ARGV[1], ARGV[2], ARGV[3]) then
    return 0
end
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[4]), ARGV[2])
return 1
