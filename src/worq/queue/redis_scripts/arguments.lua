-- The results handed to a task as arguments: each is stored once, in the
-- shared hash of the task that produced it (see hand_over in _lib.lua).
-- KEYS[1] task hash
-- ARGV[1] key prefix
-- Returns {argument id, result, argument id, result, ...}.
local out = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 4) == 'arg:' then
        local id = string.sub(field, 5)
        local value = redis.call('HGET', key.shared(ARGV[1], id), 'v')
        if value then
            out[#out + 1] = id
            out[#out + 1] = value
        end
    end
end
return out
