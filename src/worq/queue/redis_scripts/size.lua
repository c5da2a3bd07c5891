-- Number of tasks waiting to run.
-- KEYS[1] queue list   KEYS[2] delayed zset
return redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
