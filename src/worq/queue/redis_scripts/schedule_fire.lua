-- Fire a schedule for one scheduled time, if its last fire is older: record
-- the time as the last fire and store the task, in one atomic step, so that
-- any number of pools racing for the time send one task. A retry of a call
-- whose reply was lost finds the time recorded and answers "done".
-- KEYS[1] schedule-state hash   KEYS[2] task hash   KEYS[3] result list
-- ARGV[1] key prefix   ARGV[2] schedule name   ARGV[3] scheduled time (ms)
-- ARGV[4] the time after it (ms)   ARGV[5] task id ("": record the time as
-- passed over, send nothing)   ARGV[6] message   ARGV[7] keep result ("1"/"0")
-- ARGV[8] track ("1"/"0")   ARGV[9] "1": skip while the previous fire's task waits or runs
-- Returns "fired", "skipped" or "done" (see FireResult).
local prefix, name, fire = ARGV[1], ARGV[2], ARGV[3]
local state = redis.call('HGET', KEYS[1], name)
if not state then
    return 'done'
end
local last, previous = string.match(state, '^(%d+) %d+ (.*)$')
if not last or tonumber(last) >= tonumber(fire) then
    return 'done'
end
local id = ARGV[5]
if id ~= '' and ARGV[9] == '1' and previous ~= '' then
    local status = redis.call('HGET', key.task(prefix, previous), 'status')
    if status == 'processing' or NOT_STARTED[status or ''] then
        id = ''  -- the previous fire's task waits or runs: overlap skipped
    end
end
redis.call('HSET', KEYS[1], name, fire .. ' ' .. ARGV[4] .. ' ' .. (id ~= '' and id or previous))
if id == '' then
    return 'skipped'
end
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then
    return 'done'  -- a task of that id exists: sent for this time already
end
store_task(prefix, id, ARGV[6], ARGV[7], ARGV[8], 0)
return 'fired'
