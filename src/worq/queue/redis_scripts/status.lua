-- A task's status: its hash's, "completed" while its result waits, else nil.
-- KEYS[1] task hash   KEYS[2] result list
local status = redis.call('HGET', KEYS[1], 'status')
if status then return status end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'completed' end
return nil
