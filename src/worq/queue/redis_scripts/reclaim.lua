-- Take over tasks whose lease lapsed (their worker vanished), each under a
-- fresh lease, so that exactly one caller settles each of them. A sweep
-- (no task id given) also puts back in the queue ids stranded in the claimed
-- list by a worker that died between BLMOVE and get.lua: an id seen there
-- for longer than a lease.
-- KEYS[1] processing zset   KEYS[2] claimed list   KEYS[3] claimed-since hash
-- KEYS[4] queue list
-- ARGV[1] key prefix  ARGV[2] limit   ARGV[3] new lease (ms)
-- ARGV[4] one task id to reclaim, or "" for a sweep
-- Returns a flat list: id, message, attempt, lease, id, message, ...
local prefix, ms = ARGV[1], tonumber(ARGV[3])
local now = now_ms()
local ids
if ARGV[4] ~= '' then
    local deadline = redis.call('ZSCORE', KEYS[1], ARGV[4])
    ids = {}
    if deadline and tonumber(deadline) <= now then ids = {ARGV[4]} end
else
    ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
    for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, 99)) do
        local since = redis.call('HGET', KEYS[3], id)
        if not since then
            redis.call('HSET', KEYS[3], id, now)
        elseif now - tonumber(since) > ms then
            redis.call('LREM', KEYS[2], 1, id)
            redis.call('HDEL', KEYS[3], id)
            redis.call('RPUSH', KEYS[4], id)
        end
    end
end
local out = {}
for _, id in ipairs(ids) do
    if redis.call('HGET', prefix .. 'task:' .. id, 'status') == 'processing' then
        for _, v in ipairs(lease(prefix, id, ms)) do out[#out + 1] = v end
    else
        redis.call('ZREM', KEYS[1], id)
    end
end
return out
