-- Keep a running task's placeholder, and its pending dependants, for ms more.
-- KEYS[1] task hash   KEYS[2] processing zset
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] timeout (ms)
-- Returns 1, or 0 when the task is not processing (finished or lapsed).
if redis.call('HGET', KEYS[1], 'status') ~= 'processing' then
    return 0
end
local ms = tonumber(ARGV[3])
expire_tree(ARGV[1], ARGV[2], ms, {})
redis.call('ZADD', KEYS[2], now_ms() + ms, ARGV[2])
return 1
