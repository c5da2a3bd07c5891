-- Take a task's result if it is there.
-- KEYS[1] result list   KEYS[2] task hash   KEYS[3] processing zset
-- ARGV[1] task id
-- Returns {"ready", message}; {"lapsed"} when the task's lease ran out;
-- {"waiting", ms} while it runs (ms: until its lease deadline) or -1 while
-- it waits to run; {"expired"} when nothing is known of it.
local message = redis.call('LPOP', KEYS[1])
if message then
    return {'ready', message}
end
local status = redis.call('HGET', KEYS[2], 'status')
if not status then
    return {'expired'}
end
if status == 'processing' then
    local left = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or 0) - now_ms()
    if left <= 0 then return {'lapsed'} end
    return {'waiting', left}
end
return {'waiting', -1}
