-- Every schedule's definition and state, and until when a scheduler was last
-- said to be alive; raise that mark (never lower it) when asked.
-- KEYS[1] schedules hash   KEYS[2] schedule-state hash   KEYS[3] schedulers-alive string
-- ARGV[1] the new mark (ms since the epoch), or "" to leave it
-- Returns {alive (string, "0" if never), {name, definition, ...}, {name, state, ...}}.
local alive = redis.call('GET', KEYS[3]) or '0'
if ARGV[1] ~= '' and tonumber(ARGV[1]) > tonumber(alive) then
    redis.call('SET', KEYS[3], ARGV[1])
end
return {alive, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
