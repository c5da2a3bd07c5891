-- Shared helpers, prepended to every worq script when it is loaded.
--
-- Key layout of one named queue (P = "worq:{<queue name>}:", so that every
-- key of a queue hashes to one Redis Cluster slot):
--   P.."queue"          LIST  ids of runnable tasks (LPUSH in, RPOP out)
--   P.."claimed"        LIST  ids taken by BLMOVE, waiting for get.lua
--   P.."processing"     ZSET  id -> deadline (ms since the epoch) of taken tasks
--   P.."task:"..id      HASH  status, keep ("1"/"0"), deferred ("1"), msg,
--                             waiting (arguments still missing), "arg:"..arg_id
--   P.."deps:"..id      SET   ids of pending tasks that take id's result
--   P.."result:"..id    LIST  the result message (one element), with a TTL

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Keep a task's placeholder (and every pending task waiting on it) for ms.
local function expire_tree(prefix, id, ms, seen)
    if seen[id] then return end
    seen[id] = true
    redis.call('PEXPIRE', prefix .. 'task:' .. id, ms)
    local deps = prefix .. 'deps:' .. id
    if redis.call('PEXPIRE', deps, ms) == 1 then
        for _, dep in ipairs(redis.call('SMEMBERS', deps)) do
            expire_tree(prefix, dep, ms, seen)
        end
    end
end

-- Forget a task that will never run, and every pending task waiting on it.
local function drop_tree(prefix, id, seen)
    if seen[id] then return end
    seen[id] = true
    redis.call('DEL', prefix .. 'task:' .. id)
    redis.call('ZREM', prefix .. 'processing', id)
    local deps = prefix .. 'deps:' .. id
    for _, dep in ipairs(redis.call('SMEMBERS', deps)) do
        drop_tree(prefix, dep, seen)
    end
    redis.call('DEL', deps)
end
