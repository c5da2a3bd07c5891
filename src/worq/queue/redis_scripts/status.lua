-- A task's status: its hash's ("lapsed" for a run whose lease ran out),
-- "completed" while its result waits, else nil.
-- KEYS[1] task hash   KEYS[2] result list   KEYS[3] processing zset
-- ARGV[1] task id
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'processing' then
    local deadline = redis.call('ZSCORE', KEYS[3], ARGV[1])
    if deadline and tonumber(deadline) <= now_ms() then return 'lapsed' end
end
if status then return status end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'completed' end
return nil
