-- Take the next runnable task. A tracked one gets a lease (processing until
-- set_result.lua, retry.lua or a lapse); an untracked one is forgotten.
-- KEYS[1] queue list   KEYS[2] claimed list   KEYS[3] delayed zset
-- KEYS[4] claimed-since hash (see reclaim.lua)
-- ARGV[1] key prefix   ARGV[2] lease (ms)
-- ARGV[3] id already moved to the claimed list by BLMOVE, or "" to pop one
-- Returns {id, message, attempt, lease}; {id, "", 0, ""} for an id with no
-- task that is no wake-up call (garbage in the queue: the worker logs it and
-- stores nothing); or {"", wait_ms}
-- when there is nothing to run: wait_ms until the next delayed task is due,
-- -1 if none.
local prefix, ms = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
for _, due in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)) do
    redis.call('ZREM', KEYS[3], due)
    local task = prefix .. 'task:' .. due
    if redis.call('HGET', task, 'status') == 'delayed' then
        redis.call('HSET', task, 'status', 'enqueued')
        redis.call('RPUSH', KEYS[1], due)
    end
end
local id
if ARGV[3] ~= '' then
    id = ARGV[3]
    redis.call('LREM', KEYS[2], 1, id)
    redis.call('HDEL', KEYS[4], id)
else
    id = redis.call('RPOP', KEYS[1])
end
while id do
    local task = prefix .. 'task:' .. id
    local f = redis.call('HMGET', task, 'status', 'track', 'msg')
    if not f[1] and tonumber(redis.call('GET', prefix .. 'wakes') or '0') <= 0 then
        return {id, '', 0, ''}  -- no such task, and no wake-up call pending: garbage
    end
    if f[1] == 'enqueued' then
        if f[2] ~= '1' then
            redis.call('DEL', task)
            return {id, f[3] or '', 1, ''}
        end
        redis.call('HINCRBY', task, 'attempt', 1)
        return lease(prefix, id, ms)
    end
    -- a wake-up call for a task still delayed, or one that outlived its task
    -- (which ran and finished meanwhile), or an id queued twice
    woken(prefix)
    if ARGV[3] ~= '' then break end
    id = redis.call('RPOP', KEYS[1])
end
local next_due = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if next_due[2] then
    return {'', math.max(1, tonumber(next_due[2]) - now)}
end
return {'', -1}
