-- The queue's per-minute counts of a span of minutes (see worq.stats).
-- KEYS[1] the first minute's hash (every key of a call is in the queue's slot)
-- ARGV[1] key prefix   ARGV[2] first minute   ARGV[3] last minute (since the epoch)
-- Returns a flat list: minute, {field, count, ...}, for the minutes with counts.
local out = {}
for minute = tonumber(ARGV[2]), tonumber(ARGV[3]) do
    local fields = redis.call('HGETALL', key.stats(ARGV[1], minute))
    if #fields > 0 then
        out[#out + 1] = minute
        out[#out + 1] = fields
    end
end
return out
