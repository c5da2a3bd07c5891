-- Number of tasks waiting to run (queued or delayed); wake-up calls for
-- delayed tasks in the queue do not count.
-- KEYS[1] queue list   KEYS[2] delayed zset   KEYS[3] wakes counter
local wakes = tonumber(redis.call('GET', KEYS[3]) or '0')
local queued = math.max(0, redis.call('LLEN', KEYS[1]) - wakes)
return queued + redis.call('ZCARD', KEYS[2])
