-- The results handed to a task as arguments. A task that ignores its result
-- is forgotten here, as nothing else will ever finish it.
-- KEYS[1] task hash   KEYS[2] processing zset
-- ARGV[1] task id
-- Returns a flat list: arg_id1, value1, arg_id2, value2, ...
local flat = redis.call('HGETALL', KEYS[1])
local out = {}
local keep = nil
for i = 1, #flat, 2 do
    local field = flat[i]
    if string.sub(field, 1, 4) == 'arg:' then
        out[#out + 1] = string.sub(field, 5)
        out[#out + 1] = flat[i + 1]
    elseif field == 'keep' then
        keep = flat[i + 1]
    end
end
if keep == '0' then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
end
return out
