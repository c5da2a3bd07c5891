-- Take a task's result if it is there.
-- KEYS[1] result list   KEYS[2] task hash
-- Returns {"ready", message}; {"waiting", ttl_ms} while the task exists
-- (ttl_ms -1: it does not lapse); {"expired"} when nothing is known of it.
local message = redis.call('LPOP', KEYS[1])
if message then
    return {'ready', message}
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl == -2 then
    return {'expired'}
end
return {'waiting', ttl}
