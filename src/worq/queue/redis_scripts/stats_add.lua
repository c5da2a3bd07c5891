-- Add a pool's per-minute counts to the queue's (see worq.stats).
-- KEYS[1] one of the minutes' hashes (every key of a call is in the queue's slot)
-- ARGV[1] key prefix   ARGV[2] how long a minute's hash lives (ms)
-- ARGV[3], ARGV[4], ARGV[5]: minute, field, count; ARGV[6], ... likewise
local touched = {}
for i = 3, #ARGV, 3 do
    local stats = key.stats(ARGV[1], ARGV[i])
    redis.call('HINCRBY', stats, ARGV[i + 1], tonumber(ARGV[i + 2]))
    touched[stats] = true
end
for stats in pairs(touched) do
    redis.call('PEXPIRE', stats, tonumber(ARGV[2]) + 60000)
end
return 1
