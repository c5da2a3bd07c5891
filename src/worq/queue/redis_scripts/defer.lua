-- Store a task that takes other tasks' results as arguments; queue it at
-- once if they are all available, else hold it until set_result.lua hands
-- over the last one.
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] queue list
-- KEYS[3+3i-2], KEYS[3+3i-1], KEYS[3+3i]: task hash, result list and deps set
--                     of the i-th argument
-- ARGV[1] task id     ARGV[2] message       ARGV[3] keep result ("1"/"0")
-- ARGV[3+i] id of the i-th argument
-- Returns "stored", "duplicate" or "missing_argument" (nothing stored).
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
    return 'duplicate'
end
local count = #ARGV - 3
local ready, pending = {}, {}
local ttl = -1
for i = 1, count do
    local task, result, deps = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
    local arg_id = ARGV[3 + i]
    local value = redis.call('LINDEX', result, 0)
    if value then
        ready[#ready + 1] = {arg_id, value}
    elseif redis.call('HGET', task, 'keep') == '1' then
        pending[#pending + 1] = deps
        ttl = math.max(ttl, redis.call('PTTL', task))
    else
        return 'missing_argument'
    end
end
local status = 'pending'
if #pending == 0 then status = 'enqueued' end
redis.call('HSET', KEYS[1], 'status', status, 'keep', ARGV[3], 'msg', ARGV[2],
           'deferred', '1', 'waiting', #pending)
for _, pair in ipairs(ready) do
    redis.call('HSET', KEYS[1], 'arg:' .. pair[1], pair[2])
end
for _, deps in ipairs(pending) do
    redis.call('SADD', deps, ARGV[1])
end
if #pending == 0 then
    redis.call('LPUSH', KEYS[3], ARGV[1])
elseif ttl > 0 then
    -- an argument is running: this task lapses with it unless heartbeats go on
    redis.call('PEXPIRE', KEYS[1], ttl)
    for _, deps in ipairs(pending) do
        if redis.call('PTTL', deps) == -1 then redis.call('PEXPIRE', deps, ttl) end
    end
end
return 'stored'
