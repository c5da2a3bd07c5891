-- Number of tasks not yet started: queued, delayed or waiting for their
-- arguments; wake-up calls for delayed tasks in the queue do not count.
-- KEYS[1] queue list   KEYS[2] delayed zset   KEYS[3] wakes counter
-- KEYS[4] deferred set
local wakes = tonumber(redis.call('GET', KEYS[3]) or '0')
local queued = math.max(0, redis.call('LLEN', KEYS[1]) - wakes)
return queued + redis.call('ZCARD', KEYS[2]) + redis.call('SCARD', KEYS[4])
