-- Store a task and queue it, now or after a delay (store_task). The call's
-- request record (KEYS[5]) says it stored the task, so that a retry of a call whose reply was lost answers 1 again rather than
-- call its own task a duplicate, even when the task already ran, finished
-- and had its result taken meanwhile (nothing else of it is left then). The
-- record is "1", one of Redis's shared integers, and lives only for the
-- retry window (REPLAY_TTL): a backlog of tasks older than that costs just
-- the hashes and the queue list.
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] queue list   KEYS[4] delayed zset
-- KEYS[5] request record
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] message
-- ARGV[4] keep result ("1"/"0")   ARGV[5] track ("1"/"0")   ARGV[6] delay (ms)
-- ARGV[7] how long to keep the request record (ms)   ARGV[8] "1" on a retry
-- Returns 1, or 0 (nothing stored) when the id is taken.
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[5]) == 1 then
    return 1
end
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
    return 0
end
store_task(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]))
redis.call('SET', KEYS[5], 1, 'PX', ARGV[7])
return 1
