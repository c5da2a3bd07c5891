-- Take a task's result if it is there. Taking moves it to the call's own
-- taken list (KEYS[4]) for a short while, instead of deleting it: a retry of
-- a call whose reply was lost finds it there, and any other caller finds it
-- gone, so that each result is delivered exactly once.
-- KEYS[1] result list   KEYS[2] task hash   KEYS[3] processing zset
-- KEYS[4] taken list
-- ARGV[1] task id   ARGV[2] how long to keep the taken list (ms)
-- ARGV[3] "1" on a retry
-- ARGV[4] a channel to tell when the result is stored ("": none); an async
--         client's waits name theirs, so that set_result publishes the id there
-- Returns {"ready", message}; {"lapsed"} when the task's lease ran out;
-- {"waiting", ms} while it runs (ms: until its lease deadline) or -1 while
-- it waits to run; {"expired"} when nothing is known of it.
if ARGV[3] == '1' then
    local message = redis.call('LINDEX', KEYS[4], 0)
    if message then
        return {'ready', message}
    end
end
local message = redis.call('LMOVE', KEYS[1], KEYS[4], 'LEFT', 'LEFT')
if message then
    redis.call('DEL', KEYS[1])  -- the run's record, kept beside the result until now
    redis.call('PEXPIRE', KEYS[4], ARGV[2])
    return {'ready', message}
end
local status = redis.call('HGET', KEYS[2], 'status')
if not status then
    return {'expired'}
end
if ARGV[4] and ARGV[4] ~= '' then
    redis.call('HSET', KEYS[2], 'notify', ARGV[4])
end
if status == 'processing' then
    local left = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or 0) - now_ms()
    if left <= 0 then return {'lapsed'} end
    return {'waiting', left}
end
return {'waiting', -1}
