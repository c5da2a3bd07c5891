-- Finish a task: store its result and hand it to every pending task that
-- takes it, queueing those whose arguments are now complete. A task that
-- ignores its result is just forgotten. Without a lease the task is finished
-- from outside, whatever its state: it leaves the queue, the delayed set or
-- the deferred set, and a run still going loses its lease.
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] deps set
-- KEYS[4] processing zset   KEYS[5] queue list   KEYS[6] delayed zset
-- KEYS[7] deferred set   KEYS[8] request record
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] result message
-- ARGV[4] result timeout (ms)   ARGV[5] lease token ("": finish from outside)
-- ARGV[6] "1" on a retry after a lost reply   ARGV[7] request record TTL (ms)
-- ARGV[8] when it finished (ms since the epoch, the finisher's clock)
-- ARGV[9] the failure's note (JSON: status, error) when the outcome is a
--         failure to file in the failed-task registry, else ""
-- ARGV[10] the registry's limit   ARGV[11] how long it keeps an entry (ms)
-- The result list holds the result, then the run's record (see run_record in
-- _lib.lua), which pop_result.lua drops with the list when it takes the result.
-- A waiter that asked to be told (the task hash's "notify" field names its
-- channel) gets the task id published there once the outcome is stored.
-- Returns 1, or 0 (nothing changed) when the task is not running under the
-- lease, or (no lease) is unknown or already finished. A retry whose first
-- attempt went through answers 1 again: from outside, by the request record
-- (only that rare path writes one, so that a retry can never finish a new
-- task sent under the same id meanwhile); under a lease, because the task it
-- finished is gone and its result stored (wrong only if, within the retry
-- window, the lease lapsed and someone else settled the task).
local prefix, id, message = ARGV[1], ARGV[2], ARGV[3]
local f = redis.call('HMGET', KEYS[1], 'status', 'keep', 'deferred', 'lease', 'deps', 'notify',
                     'msg', 'attempt', 'track', 'started', 'worker')
if ARGV[6] == '1' then
    if redis.call('EXISTS', KEYS[8]) == 1 then
        return 1
    end
    if ARGV[5] ~= '' and not f[1] and redis.call('EXISTS', KEYS[2]) == 1 then
        return 1
    end
end
if ARGV[5] ~= '' then
    if f[1] ~= 'processing' or f[4] ~= ARGV[5] then
        return 0  -- not running under that lease (holds(), from what is read)
    end
elseif not f[1] then
    return 0
elseif f[1] == 'enqueued' then
    redis.call('LREM', KEYS[5], -1, id)
elseif f[1] == 'delayed' then
    redis.call('ZREM', KEYS[6], id)  -- its wake-up call stays counted in wakes
elseif f[1] == 'pending' then
    redis.call('SREM', KEYS[7], id)
end
if ARGV[5] == '' then
    redis.call('SET', KEYS[8], 'finished', 'PX', ARGV[7])
end
if f[3] == '1' then
    release_arguments(prefix, KEYS[1])
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[4], id)
if f[2] ~= '0' then
    -- No result list is there to clear: one is made only as its task's hash goes.
    redis.call('RPUSH', KEYS[2], message,
               run_record(f[7] or '', f[8] or '0', f[10] or '', f[11] or '', ARGV[8]))
    redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
end
if f[6] then
    redis.call('PUBLISH', f[6], id)
end
local handed = {}
if f[2] ~= '0' and f[5] == '1' then  -- some pending task takes this result
    for _, dep in ipairs(redis.call('SMEMBERS', KEYS[3])) do
        local task = key.task(prefix, dep)
        if redis.call('HGET', task, 'status') == 'pending' then
            hand_over(prefix, task, id, message)
            handed[#handed + 1] = dep
            if redis.call('HINCRBY', task, 'waiting', -1) <= 0 then
                redis.call('SREM', KEYS[7], dep)
                schedule(prefix, dep, 0)
            end
        end
    end
    redis.call('DEL', KEYS[3])
end
if (ARGV[9] or '') ~= '' then
    file_failure(prefix, id, f[7] or '', tonumber(f[8] or '0'), f[2] or '1', f[9] or '1',
                 handed, ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11]))
end
return 1
