-- A pool announces itself (its record, lapsing after a while) or says it is
-- gone; either way the records of pools that died are dropped.
-- KEYS[1] pools hash   KEYS[2] pools-alive zset
-- ARGV[1] key prefix   ARGV[2] pool id   ARGV[3] record (JSON)
-- ARGV[4] how long it lives (ms; "0": forget it now)
local now = now_ms()
drop_lapsed_pools(ARGV[1], now)
if tonumber(ARGV[4]) > 0 then
    redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
else
    redis.call('HDEL', KEYS[1], ARGV[2])
    redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
