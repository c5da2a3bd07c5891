-- Take over tasks whose lease lapsed (their worker vanished), each under a
-- fresh lease, so that exactly one caller settles each of them. A sweep
-- (no task id given) also puts back in the queue ids stranded in the claimed
-- list by a worker that died between BLMOVE and get.lua (or lost BLMOVE's
-- reply): an id seen there for longer than a lease. The call's request
-- record (KEYS[5]) remembers what it took over, so that a retry of a call
-- whose reply was lost hands back the same tasks under the same leases
-- (those still held) instead of leasing them to nobody.
-- KEYS[1] processing zset   KEYS[2] claimed list   KEYS[3] claimed-since hash
-- KEYS[4] queue list   KEYS[5] request record
-- ARGV[1] key prefix  ARGV[2] limit   ARGV[3] new lease (ms)
-- ARGV[4] one task id to reclaim, or "" for a sweep
-- ARGV[5] how long to keep the request record (ms)   ARGV[6] "1" on a retry
-- Returns a flat list: id, message, attempt, lease, id, message, ...
local prefix, ms = ARGV[1], tonumber(ARGV[3])
local out = {}
if ARGV[6] == '1' then
    local record = redis.call('GET', KEYS[5])
    if record then
        local held = cmsgpack.unpack(record)
        for i = 1, #held, 2 do
            local id, token = held[i], held[i + 1]
            local f = redis.call('HMGET', key.task(prefix, id), 'status', 'lease', 'msg', 'attempt')
            if f[1] == 'processing' and f[2] == token then
                for _, v in ipairs({id, f[3] or '', tonumber(f[4] or '0'), token}) do
                    out[#out + 1] = v
                end
            end
        end
        return out
    end
end
local now = now_ms()
local ids
if ARGV[4] ~= '' then
    local deadline = redis.call('ZSCORE', KEYS[1], ARGV[4])
    ids = {}
    if deadline and tonumber(deadline) <= now then ids = {ARGV[4]} end
else
    ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
    for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, 99)) do
        local since = redis.call('HGET', KEYS[3], id)
        if not since then
            redis.call('HSET', KEYS[3], id, now)
        elseif now - tonumber(since) > ms then
            redis.call('LREM', KEYS[2], 1, id)
            redis.call('HDEL', KEYS[3], id)
            redis.call('RPUSH', KEYS[4], id)
        end
    end
end
local held = {}
for _, id in ipairs(ids) do
    if redis.call('HGET', key.task(prefix, id), 'status') == 'processing' then
        local taken = lease(prefix, id, ms)
        for _, v in ipairs(taken) do out[#out + 1] = v end
        held[#held + 1] = id
        held[#held + 1] = taken[4]
    else
        redis.call('ZREM', KEYS[1], id)
    end
end
if #held > 0 then
    redis.call('SET', KEYS[5], cmsgpack.pack(held), 'PX', ARGV[5])
end
return out
