-- Store a task that takes other tasks' results as arguments; queue it at
-- once if they are all available, else hold it until set_result.lua hands
-- over the last one. The call's request record (KEYS[4]) says it stored the
-- task, so that a retry of a call whose reply was lost answers "stored" again
-- (as enqueue.lua does).
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] queue list
-- KEYS[4] request record
-- KEYS[4+3i-2], KEYS[4+3i-1], KEYS[4+3i]: task hash, result list and deps set
--                     of the i-th argument
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] message   ARGV[4] keep result
-- ARGV[5] how long to keep the request record (ms)   ARGV[6] "1" on a retry
-- ARGV[6+i] id of the i-th argument
-- Returns "stored", "duplicate" or "missing_argument" (nothing stored).
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
    return 'stored'
end
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
    return 'duplicate'
end
local count = #ARGV - 6
local ready, pending = {}, {}
for i = 1, count do
    local task, result, deps = KEYS[3 * i + 2], KEYS[3 * i + 3], KEYS[3 * i + 4]
    local value = redis.call('LINDEX', result, 0)
    if value then
        ready[#ready + 1] = {ARGV[6 + i], value}
    elseif redis.call('EXISTS', task) == 1 and redis.call('HGET', task, 'keep') ~= '0' then
        pending[#pending + 1] = {task, deps}
    else
        return 'missing_argument'
    end
end
redis.call('HSET', KEYS[1], 'status', 'pending', 'keep', ARGV[4],
           'msg', ARGV[3], 'deferred', '1', 'waiting', #pending)
for _, pair in ipairs(ready) do
    hand_over(ARGV[1], KEYS[1], pair[1], pair[2])
    link_dependant(ARGV[1], pair[1], ARGV[2])
end
for _, pair in ipairs(pending) do
    redis.call('HSET', pair[1], 'deps', '1')
    redis.call('SADD', pair[2], ARGV[2])
end
if #pending == 0 then
    schedule(ARGV[1], ARGV[2], 0)
else
    redis.call('SADD', key.deferred(ARGV[1]), ARGV[2])
end
redis.call('SET', KEYS[4], 1, 'PX', ARGV[5])
return 'stored'
