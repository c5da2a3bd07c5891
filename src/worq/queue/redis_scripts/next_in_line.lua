-- The runnable task a worker would take next: its id and its message's
-- envelope (up to the first newline). The queue list's tail is next; ids there
-- that are not runnable (wake-up calls of delayed tasks) are passed over, up to 100.
-- KEYS[1] queue list
-- ARGV[1] key prefix
-- Returns {id, envelope}, or {} when no task waits.
local ids = redis.call('LRANGE', KEYS[1], -100, -1)
for i = #ids, 1, -1 do
    local f = redis.call('HMGET', key.task(ARGV[1], ids[i]), 'status', 'msg')
    if f[1] == 'enqueued' then
        local message = f[2] or ''
        local nl = string.find(message, '\n', 1, true)
        return {ids[i], nl and string.sub(message, 1, nl - 1) or message}
    end
end
return {}
