-- Store a task and queue it, now or after a delay.
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] queue list   KEYS[4] delayed zset
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] message
-- ARGV[4] keep result ("1"/"0")   ARGV[5] track ("1"/"0")   ARGV[6] delay (ms)
-- Returns 1, or 0 (nothing stored) when the id is taken.
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
    return 0
end
redis.call('HSET', KEYS[1], 'keep', ARGV[4], 'track', ARGV[5], 'msg', ARGV[3], 'attempt', 0)
schedule(ARGV[1], ARGV[2], tonumber(ARGV[6]))
return 1
