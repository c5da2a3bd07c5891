-- All the backend holds of one task, read at once (for a look at it).
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] deps set   KEYS[4] registry hash
-- ARGV[1] task id
-- Returns {} when nothing is held, else {status ("completed" once finished),
-- message, attempt, started, worker, {outcome, its run's record} or {},
-- {dependant ids}, {registry entry} or {}}.
local f = redis.call('HMGET', KEYS[1], 'status', 'msg', 'attempt', 'started', 'worker')
local outcome = redis.call('LRANGE', KEYS[2], 0, 1)
local filed = redis.call('HGET', KEYS[4], ARGV[1])
if not f[1] and #outcome == 0 and not filed then
    return {}
end
return {f[1] or 'completed', f[2] or '', f[3] or '0', f[4] or '', f[5] or '',
        outcome, redis.call('SMEMBERS', KEYS[3]), filed and {filed} or {}}
