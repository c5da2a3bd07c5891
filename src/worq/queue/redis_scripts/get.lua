-- Take the next runnable task: mark it processing with a lapsing placeholder.
-- KEYS[1] queue list   KEYS[2] claimed list   KEYS[3] processing zset
-- ARGV[1] key prefix   ARGV[2] placeholder timeout (ms)
-- ARGV[3] id already moved to the claimed list by BLMOVE, or "" to pop one
-- Returns {id, message}; {id, ""} for an id with no task (garbage in the
-- queue, rejected by the worker); nil when the queue is empty.
local prefix, ms = ARGV[1], tonumber(ARGV[2])
local id
if ARGV[3] ~= '' then
    id = ARGV[3]
    redis.call('LREM', KEYS[2], 1, id)
else
    id = redis.call('RPOP', KEYS[1])
end
while id do
    local task = prefix .. 'task:' .. id
    local f = redis.call('HMGET', task, 'status', 'keep', 'deferred', 'msg')
    if not f[1] then
        return {id, ''}
    end
    if f[1] == 'enqueued' then
        if f[2] == '1' or f[3] == '1' then
            redis.call('HSET', task, 'status', 'processing')
            expire_tree(prefix, id, ms, {})
            redis.call('ZADD', KEYS[3], now_ms() + ms, id)
        else
            redis.call('DEL', task)
        end
        return {id, f[4] or ''}
    end
    -- an id queued twice: its task already left the queue
    if ARGV[3] ~= '' then return nil end
    id = redis.call('RPOP', KEYS[1])
end
return nil
