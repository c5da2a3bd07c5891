-- Store a task that takes other tasks' results as arguments; queue it at
-- once if they are all available, else hold it until set_result.lua hands
-- over the last one (store_deferred in _lib.lua). The call's request record
-- (KEYS[4]) says it stored the task, so that a retry of a call whose reply
-- was lost answers "stored" again (as enqueue.lua does).
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] queue list
-- KEYS[4] request record
-- KEYS[4+3i-2], KEYS[4+3i-1], KEYS[4+3i]: task hash, result list and deps set
--                     of the i-th argument (declared for routing; the
--                     helpers build the same names from the prefix)
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
local arguments = arguments_for(ARGV[1], {unpack(ARGV, 7)})
if not arguments then
    return 'missing_argument'
end
store_deferred(ARGV[1], ARGV[2], ARGV[3], ARGV[4], arguments)
redis.call('SET', KEYS[4], 1, 'PX', ARGV[5])
return 'stored'
