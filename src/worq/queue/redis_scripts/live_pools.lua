-- The records of the live pools: those whose announcement has not lapsed.
-- KEYS[1] pools hash   KEYS[2] pools-alive zset
-- ARGV[1] key prefix
-- Returns {pool id, record, ...}.
drop_lapsed_pools(ARGV[1], now_ms())
return redis.call('HGETALL', KEYS[1])
