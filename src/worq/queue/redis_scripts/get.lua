-- Take the next runnable task. A tracked one gets a lease (processing until
-- set_result.lua, retry.lua or a lapse); an untracked one is forgotten. The
-- call's request record (KEYS[5]) remembers what it took, so that a retry of
-- a call whose reply was lost hands back the same task under the same lease
-- (while that lease holds) instead of leasing a task to nobody.
-- KEYS[1] queue list   KEYS[2] claimed list   KEYS[3] delayed zset
-- KEYS[4] claimed-since hash (see reclaim.lua)   KEYS[5] request record
-- ARGV[1] key prefix   ARGV[2] lease (ms)
-- ARGV[3] "1" right after a BLMOVE from the queue to the claimed list, sent
--         in the same round trip: take the oldest id there (the one that
--         BLMOVE moved, or one moved by another worker whose own call comes
--         next and finds this one's instead: every BLMOVE is followed by one
--         such call, so no id is left behind); "" to pop the queue
-- ARGV[4] how long to keep the request record (ms)   ARGV[5] "1" on a retry
-- ARGV[6] who takes it ("host:pid"), recorded with the run's start
-- Returns {"task", id, message, attempt, lease}, lease "" for an untracked
-- task; {"garbage", id} for an id with no task that is no wake-up call (the
-- worker logs it and stores nothing); or {"none", wait_ms} when there is
-- nothing to run: wait_ms until the next delayed task is due, -1 if none.
local prefix, ms = ARGV[1], tonumber(ARGV[2])
if ARGV[5] == '1' then
    local record = redis.call('GET', KEYS[5])
    if record then
        local id, token, message = cmsgpack.unpack(record)
        if token == '' then
            return {'task', id, message, 1, ''}
        end
        local f = redis.call('HMGET', key.task(prefix, id), 'status', 'lease', 'msg', 'attempt')
        if f[1] == 'processing' and f[2] == token then
            return {'task', id, f[3] or '', tonumber(f[4] or '0'), token}
        end
        -- that lease was reclaimed meanwhile: take another task
    end
end
local now = now_ms()
for _, due in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)) do
    redis.call('ZREM', KEYS[3], due)
    local task = key.task(prefix, due)
    if redis.call('HGET', task, 'status') == 'delayed' then
        redis.call('HSET', task, 'status', 'enqueued')
        redis.call('RPUSH', KEYS[1], due)
    end
end
local id
if ARGV[3] ~= '' then
    -- Nothing there: the BLMOVE timed out or was unblocked (a stop), or a
    -- sweep put its id back in the queue.
    id = redis.call('RPOP', KEYS[2])
    if id then
        redis.call('HDEL', KEYS[4], id)
    end
else
    id = redis.call('RPOP', KEYS[1])
end
while id do
    local task = key.task(prefix, id)
    local f = redis.call('HMGET', task, 'status', 'track', 'msg', 'attempt')
    if not f[1] and tonumber(redis.call('GET', key.wakes(prefix)) or '0') <= 0 then
        return {'garbage', id}  -- no such task, and no wake-up call pending
    end
    if f[1] == 'enqueued' then
        if f[2] == '0' then
            redis.call('DEL', task)
            redis.call('SET', KEYS[5], cmsgpack.pack(id, '', f[3] or ''), 'PX', ARGV[4])
            return {'task', id, f[3] or '', 1, ''}
        end
        local taken = lease(prefix, id, ms, f[3] or '', tonumber(f[4] or '0') + 1, now, ARGV[6])
        redis.call('SET', KEYS[5], cmsgpack.pack(id, taken[4]), 'PX', ARGV[4])
        return {'task', taken[1], taken[2], taken[3], taken[4]}
    end
    -- a wake-up call for a task still delayed, or one that outlived its task
    -- (which ran and finished meanwhile), or an id queued twice
    woken(prefix)
    if ARGV[3] ~= '' then break end
    id = redis.call('RPOP', KEYS[1])
end
local next_due = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if next_due[2] then
    return {'none', math.max(1, tonumber(next_due[2]) - now)}
end
return {'none', -1}
