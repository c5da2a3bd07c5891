-- Shared helpers, prepended to every worq script when it is loaded.
--
-- Key layout of one named queue (P = "worq:{<queue name>}:", so that every
-- key of a queue hashes to one Redis Cluster slot):
--   P.."queue"          LIST  ids of runnable tasks (LPUSH in, RPOP out)
--   P.."claimed"        LIST  ids taken by BLMOVE, waiting for get.lua
--   P.."claimed_since"  HASH  id -> when a sweep first saw it in "claimed"
--   P.."delayed"        ZSET  id -> time (ms since the epoch) it becomes runnable
--   P.."wakes"          STRING how many ids in "queue" are wake-up calls for
--                             delayed tasks (see schedule), for size.lua
--   P.."processing"     ZSET  id -> lease deadline (ms since the epoch)
--   P.."deferred"       SET   ids of pending tasks, waiting for their arguments
--   P.."dropping"       LIST  ids a purge (discard_pending.lua) has still to drop
--   P.."req:"..token    STRING what the call with this request token did (a
--                             task stored, taken or finished), with a TTL, so
--                             that a retry after a lost reply gets the same answer
--   P.."taken:"..token  LIST  the result that call took, with a TTL (see pop_result)
--   P.."leases"         STRING the last lease token handed out (a counter)
--   P.."task:"..id      HASH  status, keep ("1"/"0"), track ("1"/"0"), msg,
--                             attempt, lease (the current lease's token),
--                             deferred ("1"), waiting (arguments still missing),
--                             "arg:"..arg_id ("": that result was handed over,
--                             and lives in P.."shared:"..arg_id)
--   P.."deps:"..id      SET   ids of pending tasks that take id's result
--   P.."result:"..id    LIST  the result message (one element), with a TTL
--   P.."shared:"..id    HASH  v: id's result, stored once however many pending
--                             tasks take it; refs: how many still hold it (the
--                             last one to finish or be dropped deletes it)

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Make a task runnable now (queue) or after delay_ms (delayed zset). A
-- delayed id is also pushed on the queue, to wake a worker blocked there: it
-- skips the id (still delayed) and sleeps until the task is due.
local function schedule(prefix, id, delay_ms)
    local task = prefix .. 'task:' .. id
    if delay_ms > 0 then
        redis.call('HSET', task, 'status', 'delayed')
        redis.call('ZADD', prefix .. 'delayed', now_ms() + delay_ms, id)
        redis.call('LPUSH', prefix .. 'queue', id)
        redis.call('INCR', prefix .. 'wakes')
    else
        redis.call('HSET', task, 'status', 'enqueued')
        redis.call('LPUSH', prefix .. 'queue', id)
    end
end

-- Hand a taken task a new lease: returns {id, message, attempt, lease}. The
-- token comes from one counter per queue, never from the task's own record,
-- so that it is unique across every incarnation of an id: a stale run of a
-- task sent before under the same id can never finish the new one.
local function lease(prefix, id, ms)
    local task = prefix .. 'task:' .. id
    local token = redis.call('INCR', prefix .. 'leases')
    redis.call('HSET', task, 'status', 'processing', 'lease', token)
    redis.call('ZADD', prefix .. 'processing', now_ms() + ms, id)
    local f = redis.call('HMGET', task, 'msg', 'attempt')
    return {id, f[1] or '', tonumber(f[2] or '0'), tostring(token)}
end

-- True while the task runs under the lease token ('' accepts any lease).
local function holds(prefix, id, token)
    local f = redis.call('HMGET', prefix .. 'task:' .. id, 'status', 'lease')
    return f[1] == 'processing' and (token == '' or f[2] == token)
end

-- A worker skipped an id in the queue: a wake-up call (or a duplicate).
local function woken(prefix)
    if redis.call('DECR', prefix .. 'wakes') <= 0 then
        redis.call('DEL', prefix .. 'wakes')
    end
end

-- Hand result ``message`` of task ``id`` to the dependant whose hash is
-- ``task``: one shared copy for all of them, counted, never one copy each.
local function hand_over(prefix, task, id, message)
    local shared = prefix .. 'shared:' .. id
    if redis.call('HINCRBY', shared, 'refs', 1) == 1 then
        redis.call('HSET', shared, 'v', message)
    end
    redis.call('HSET', task, 'arg:' .. id, '')
end

-- A task that took arguments is going away (finished or dropped): let go of
-- the shared results it held, deleting each one nobody holds any more.
local function release_arguments(prefix, task)
    for _, field in ipairs(redis.call('HKEYS', task)) do
        if string.sub(field, 1, 4) == 'arg:' then
            local shared = prefix .. 'shared:' .. string.sub(field, 5)
            if redis.call('HINCRBY', shared, 'refs', -1) <= 0 then
                redis.call('DEL', shared)
            end
        end
    end
end

-- The statuses of a task that has not started: what len(q) counts and
-- discard_pending drops.
local NOT_STARTED = {enqueued = true, delayed = true, pending = true}
