-- Send failed tasks of the registry again, each as a new attempt of the same
-- id, in the order they failed (so a dependency is stored before the tasks
-- that take its result). For each one:
-- - its stored failure (result list) goes, so its waiter gets the new outcome;
-- - it is stored as a new task would be (store_task, or store_deferred when
--   its envelope names Deferred arguments), its attempt count kept, so the
--   next run is one more;
-- - the pending (or queued, not started) tasks its failure was handed to take
--   it back and wait for the new outcome;
-- - the registry's tasks that its failure was handed to (they failed with it)
--   are retried along, after it, waiting for it.
-- KEYS[1] registry zset   KEYS[2] registry hash
-- ARGV[1] key prefix  ARGV[2] "all", or "" for just ARGV[3], ARGV[4], ...
-- Returns a flat list: id, what happened ("retried", "unknown", "busy",
-- "missing_argument"), id, ...
local prefix = ARGV[1]
drop_lapsed_failures(prefix, now_ms())
local work = {}
if ARGV[2] == 'all' then
    work = redis.call('ZRANGE', KEYS[1], 0, -1)
else
    local order = {}
    for i = 3, #ARGV do
        if order[ARGV[i]] == nil then
            order[ARGV[i]] = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or '-1')
            work[#work + 1] = ARGV[i]
        end
    end
    table.sort(work, function(a, b) return order[a] < order[b] end)
end

-- Store the task again; nil, or the reason it cannot be.
local function retry(id)
    local entry = redis.call('HGET', KEYS[2], id)
    if not entry then
        return 'unknown'
    end
    local task = key.task(prefix, id)
    if redis.call('EXISTS', task) == 1 then
        return 'busy'
    end
    local nl = string.find(entry, '\n', 1, true)
    local info = cjson.decode(string.sub(entry, 1, nl - 1))
    local message = string.sub(entry, nl + 1)
    local line = string.sub(message, 1, (string.find(message, '\n', 1, true) or 0) - 1)
    local ok, envelope = pcall(cjson.decode, line)  -- an unreadable one is retried, and refused
    local refs = ok and type(envelope) == 'table' and type(envelope.refs) == 'table'
        and envelope.refs or {}
    local arguments = arguments_for(prefix, refs)
    if not arguments then
        return 'missing_argument'
    end
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('DEL', key.result(prefix, id))
    if #refs == 0 then
        store_task(prefix, id, message, info.keep, info.track, 0)
    else
        store_deferred(prefix, id, message, info.keep, arguments)
    end
    if info.attempt > 0 then
        redis.call('HSET', task, 'attempt', info.attempt)
    end
    for _, dep in ipairs(info.dependants) do
        local held = key.task(prefix, dep)
        local f = redis.call('HMGET', held, 'status', 'arg:' .. id)
        if (f[1] == 'pending' or f[1] == 'enqueued') and f[2] then
            if f[1] == 'enqueued' then
                redis.call('LREM', key.queue(prefix), 0, dep)
                redis.call('SADD', key.deferred(prefix), dep)
            end
            release_argument(prefix, id)
            redis.call('HDEL', held, 'arg:' .. id)
            redis.call('HSET', held, 'status', 'pending')
            redis.call('HINCRBY', held, 'waiting', 1)
            redis.call('HSET', task, 'deps', '1')
            redis.call('SADD', key.deps(prefix, id), dep)
        elseif redis.call('HEXISTS', KEYS[2], dep) == 1 then
            work[#work + 1] = dep
        end
    end
    return nil
end

local out, done = {}, {}
local i = 1
while i <= #work do  -- work grows with the dependants retried along
    local id = work[i]
    if not done[id] then
        done[id] = true
        out[#out + 1] = id
        out[#out + 1] = retry(id) or 'retried'
    end
    i = i + 1
end
return out
