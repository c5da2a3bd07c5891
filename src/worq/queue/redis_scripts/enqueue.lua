-- Queue a task and store its result placeholder.
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] queue list
-- ARGV[1] task id     ARGV[2] message       ARGV[3] keep result ("1"/"0")
-- Returns 1, or 0 (nothing stored) when the id is taken.
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
    return 0
end
redis.call('HSET', KEYS[1], 'status', 'enqueued', 'keep', ARGV[3], 'msg', ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[1])
return 1
