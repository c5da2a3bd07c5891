-- Register schedules: each one's definition, and its state only if it has
-- none (a known schedule keeps the last fire the pools stored).
-- KEYS[1] schedules hash   KEYS[2] schedule-state hash
-- ARGV: name, definition, state ("<last> <next> "), repeated
for i = 1, #ARGV, 3 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 2])
end
return 1
