-- Shared helpers. Each script is loaded with those it uses, and those these use,
-- in this file's order (see __init__.py): define a helper before any helper that
-- calls it, each at the start of a line (local function, local NAME =, function key.).
--
-- Key layout of one named queue (P = "worq:{<queue name>}:", so that every
-- key of a queue hashes to one Redis Cluster slot). Scripts name a key only
-- through the key.* builders below, one per kind, which mirror RedisKeys in
-- _redis_keys.py name for name: Python and Lua cannot drift apart, and a
-- test (tests/test_redis_keys.py) checks every key a script touches is one
-- of these kinds, in the queue's slot.
--   P.."queue"          LIST  ids of runnable tasks (LPUSH in, RPOP out)
--   P.."claimed"        LIST  ids taken by BLMOVE, waiting for get.lua
--   P.."claimed_since"  HASH  id -> when a sweep first saw it in "claimed"
--   P.."delayed"        ZSET  id -> time (ms since the epoch) it becomes runnable
--   P.."wakes"          STRING how many ids in "queue" are wake-up calls for
--                             delayed tasks (see schedule), for size.lua
--   P.."processing"     ZSET  id -> lease deadline (ms since the epoch)
--   P.."deferred"       SET   ids of pending tasks, waiting for their arguments
--   P.."dropping"       LIST  ids a purge (discard_pending.lua) has still to drop
--   P.."leases"         STRING the last lease token handed out (a counter)
--   P.."schedules"      HASH  schedule name -> its definition (JSON, for listings)
--   P.."schedule_state" HASH  schedule name -> "<last> <next> <task id>": the
--                             latest scheduled time fired or passed over and the
--                             one after it (ms since the epoch), and the task
--                             id of the latest fire ("" before the first)
--   P.."schedulers_alive" STRING until when (ms since the epoch) a pool's
--                             scheduler was last said to run
--   P.."pools"          HASH  pool id -> its record (JSON): a live pool's
--                             announcement, refreshed by its heartbeat
--   P.."pools_alive"    ZSET  pool id -> when its record lapses (ms since the epoch)
--   P.."failed"         ZSET  failed task id -> when its registry entry lapses (ms
--                             since the epoch): the failed-task registry's order
--   P.."failed_tasks"   HASH  failed task id -> its entry: a JSON line (status,
--                             error, attempt, failed (ms), keep, track, dependants:
--                             the pending tasks handed the failure), a newline,
--                             then the task's message as it was sent
--   P.."stats:"..minute HASH  one minute's counts (minute since the epoch): runs by
--                             outcome, and per run-time bucket ("d"..i), added by
--                             the pools' heartbeats; with a TTL (the last hour's)
--   P.."task:"..id      HASH  status, msg, keep ("0": drop the result; absent:
--                             keep it), track ("0": no lease; absent: leased),
--                             attempt (absent until first taken), lease (the
--                             current lease's token), started and worker (when
--                             its latest run began, ms, and who took it), deps ("1": some pending
--                             task takes this one's result, see P.."deps:"),
--                             deferred ("1"), waiting (arguments still missing),
--                             "arg:"..arg_id ("": that result was handed over,
--                             and lives in P.."shared:"..arg_id)
--   P.."result:"..id    LIST  the result message, then its run's record (see
--                             run_record), with a TTL
--   P.."deps:"..id      SET   ids of pending tasks that take id's result
--   P.."shared:"..id    HASH  v: id's result, stored once however many pending
--                             tasks take it; refs: how many still hold it (the
--                             last one to finish or be dropped deletes it)
--   P.."req:"..token    STRING what the call with this request token did (a
--                             task stored, taken or finished), with a TTL, so
--                             that a retry after a lost reply gets the same answer
--   P.."taken:"..token  LIST  the result that call took, with a TTL (see pop_result)

-- Kinds Python always passes in KEYS (result, request, ...) have builders
-- too, unused for now, so that the mirror of RedisKeys stays whole.
local key = {}
function key.queue(prefix) return prefix .. 'queue' end
function key.claimed(prefix) return prefix .. 'claimed' end
function key.claimed_since(prefix) return prefix .. 'claimed_since' end
function key.delayed(prefix) return prefix .. 'delayed' end
function key.wakes(prefix) return prefix .. 'wakes' end
function key.processing(prefix) return prefix .. 'processing' end
function key.deferred(prefix) return prefix .. 'deferred' end
function key.dropping(prefix) return prefix .. 'dropping' end
function key.leases(prefix) return prefix .. 'leases' end
function key.schedules(prefix) return prefix .. 'schedules' end
function key.schedule_state(prefix) return prefix .. 'schedule_state' end
function key.schedulers_alive(prefix) return prefix .. 'schedulers_alive' end
function key.pools(prefix) return prefix .. 'pools' end
function key.pools_alive(prefix) return prefix .. 'pools_alive' end
function key.failed(prefix) return prefix .. 'failed' end
function key.failed_tasks(prefix) return prefix .. 'failed_tasks' end
function key.stats(prefix, minute) return prefix .. 'stats:' .. minute end
function key.task(prefix, id) return prefix .. 'task:' .. id end
function key.result(prefix, id) return prefix .. 'result:' .. id end
function key.deps(prefix, id) return prefix .. 'deps:' .. id end
function key.shared(prefix, id) return prefix .. 'shared:' .. id end
function key.request(prefix, token) return prefix .. 'req:' .. token end
function key.taken(prefix, token) return prefix .. 'taken:' .. token end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Drop the records of the pools whose announcement lapsed (they died).
local function drop_lapsed_pools(prefix, now)
    local lapsed = redis.call('ZRANGEBYSCORE', key.pools_alive(prefix), '-inf', now)
    if #lapsed > 0 then
        redis.call('HDEL', key.pools(prefix), unpack(lapsed))
        redis.call('ZREMRANGEBYSCORE', key.pools_alive(prefix), '-inf', now)
    end
end

-- What the result list keeps of a finished run beside its result, for a look at
-- the task (inspect.lua) until the result is taken: a JSON line (started,
-- finished, worker, attempt; "cut" when the message was too big to keep),
-- a newline, then the task's message (only its envelope's line when over
-- RUN_RECORD_MESSAGE bytes).
local RUN_RECORD_MESSAGE = 4096
local function run_record(message, attempt, started, worker, finished)
    local cut = #message > RUN_RECORD_MESSAGE
    if cut then
        local nl = string.find(message, '\n', 1, true)
        message = string.sub(message, 1, math.min((nl or 1) - 1, RUN_RECORD_MESSAGE)) .. '\n'
    end
    return '{"started":' .. (started ~= '' and started or 'null') .. ',"finished":' .. finished
        .. ',"worker":' .. cjson.encode(worker) .. ',"attempt":' .. attempt
        .. ',"cut":' .. tostring(cut) .. '}\n' .. message
end

-- Put the id of a task whose status already says so in the queue (runnable
-- now) or in the delayed zset (after delay_ms). A delayed id is also pushed on
-- the queue, to wake a worker blocked there: it skips the id (still delayed)
-- and sleeps until the task is due.
local function queue_id(prefix, id, delay_ms)
    if delay_ms > 0 then
        redis.call('ZADD', key.delayed(prefix), now_ms() + delay_ms, id)
        redis.call('INCR', key.wakes(prefix))
    end
    redis.call('LPUSH', key.queue(prefix), id)
end

-- Store a new task and queue it, now or after delay_ms, in as few commands
-- as possible: the hash holds just its status and message (keep and track
-- only when "0", attempt only once taken), small enough for Redis's compact
-- encoding. The caller has checked that the id is free.
local function store_task(prefix, id, message, keep, track, delay_ms)
    local fields = {'status', delay_ms > 0 and 'delayed' or 'enqueued', 'msg', message}
    if keep == '0' then
        fields[#fields + 1], fields[#fields + 2] = 'keep', '0'
    end
    if track == '0' then
        fields[#fields + 1], fields[#fields + 2] = 'track', '0'
    end
    redis.call('HSET', key.task(prefix, id), unpack(fields))
    queue_id(prefix, id, delay_ms)
end

-- Make a task runnable now or after delay_ms: its status, then queue_id.
local function schedule(prefix, id, delay_ms)
    redis.call('HSET', key.task(prefix, id), 'status', delay_ms > 0 and 'delayed' or 'enqueued')
    queue_id(prefix, id, delay_ms)
end

-- Hand a taken task a new lease: returns {id, message, attempt, lease}. The
-- token comes from one counter per queue, never from the task's own record,
-- so that it is unique across every incarnation of an id: a stale run of a
-- task sent before under the same id can never finish the new one. get.lua,
-- which starts a new attempt, passes the message and attempt it already read
-- (and the time), saving commands, and who runs it (recorded with the start,
-- for the dashboard); reclaim.lua passes nil and they are read.
local function lease(prefix, id, ms, message, attempt, now, worker)
    local task = key.task(prefix, id)
    local token = redis.call('INCR', key.leases(prefix))
    if message then
        redis.call('HSET', task, 'status', 'processing', 'lease', token, 'attempt', attempt,
                   'started', now, 'worker', worker)
    else
        redis.call('HSET', task, 'status', 'processing', 'lease', token)
        local f = redis.call('HMGET', task, 'msg', 'attempt')
        message, attempt = f[1] or '', tonumber(f[2] or '0')
    end
    redis.call('ZADD', key.processing(prefix), (now or now_ms()) + ms, id)
    return {id, message, attempt, tostring(token)}
end

-- True while the task runs under the lease token ('' accepts any lease).
local function holds(prefix, id, token)
    local f = redis.call('HMGET', key.task(prefix, id), 'status', 'lease')
    return f[1] == 'processing' and (token == '' or f[2] == token)
end

-- A worker skipped an id in the queue: a wake-up call (or a duplicate).
local function woken(prefix)
    if redis.call('DECR', key.wakes(prefix)) <= 0 then
        redis.call('DEL', key.wakes(prefix))
    end
end

-- Hand result ``message`` of task ``id`` to the dependant whose hash is
-- ``task``: one shared copy for all of them, counted, never one copy each.
-- The copy is written each time: a failed task sent again from the failed-task
-- registry hands over its new result where the old failure may still be held.
local function hand_over(prefix, task, id, message)
    local shared = key.shared(prefix, id)
    redis.call('HINCRBY', shared, 'refs', 1)
    redis.call('HSET', shared, 'v', message)
    redis.call('HSET', task, 'arg:' .. id, '')
end

-- Let go of one hold on the shared result of task ``id``, deleting it when
-- nobody holds it any more.
local function release_argument(prefix, id)
    local shared = key.shared(prefix, id)
    if redis.call('HINCRBY', shared, 'refs', -1) <= 0 then
        redis.call('DEL', shared)
    end
end

-- A task that took arguments is going away (finished or dropped): let go of
-- the shared results it held, deleting each one nobody holds any more.
local function release_arguments(prefix, task)
    for _, field in ipairs(redis.call('HKEYS', task)) do
        if string.sub(field, 1, 4) == 'arg:' then
            release_argument(prefix, string.sub(field, 5))
        end
    end
end

-- Drop the failed-task registry's entries whose time is up (at most 1,000 a call).
local function drop_lapsed_failures(prefix, now)
    local lapsed = redis.call('ZRANGEBYSCORE', key.failed(prefix), '-inf', now, 'LIMIT', 0, 1000)
    if #lapsed > 0 then
        redis.call('HDEL', key.failed_tasks(prefix), unpack(lapsed))
        redis.call('ZREM', key.failed(prefix), unpack(lapsed))
    end
end

-- A task that takes the result of ``failed_id``, a task of the failed-task
-- registry, was just handed that failure when it was sent (its dependency
-- had failed already): note it among the entry's dependants, so that a retry
-- of the failed task takes it along, as it does those handed it later.
local function link_dependant(prefix, failed_id, dependant)
    local entry = redis.call('HGET', key.failed_tasks(prefix), failed_id)
    if not entry then
        return
    end
    local nl = string.find(entry, '\n', 1, true)
    local info = cjson.decode(string.sub(entry, 1, nl - 1))
    info.dependants = info.dependants or {}
    info.dependants[#info.dependants + 1] = dependant  -- not empty: encoded as an array
    redis.call('HSET', key.failed_tasks(prefix), failed_id,
               cjson.encode(info) .. string.sub(entry, nl))
end

-- File a failed task in the registry: ``note`` is the JSON object of its status
-- and error, to which the attempt, the time, the keep and track flags and the
-- dependants handed the failure are added; then the lapsed entries go, and the
-- oldest beyond ``limit`` (at most 1,000 a call, so a lowered limit catches up).
local function file_failure(prefix, id, message, attempt, keep, track, dependants, note,
                            limit, keep_for)
    local t = redis.call('TIME')  -- to the microsecond: filings within a millisecond keep their order
    local precise = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
    local now = math.floor(precise)
    local handed = #dependants > 0 and cjson.encode(dependants) or '[]'
    local entry = '{"attempt":' .. attempt .. ',"failed":' .. now .. ',"keep":"' .. keep
        .. '","track":"' .. track .. '","dependants":' .. handed .. ',' .. string.sub(note, 2)
    redis.call('HSET', key.failed_tasks(prefix), id, entry .. '\n' .. message)
    redis.call('ZADD', key.failed(prefix), precise + keep_for, id)
    -- The registry lapses whole when nothing failed for as long as it keeps an entry.
    redis.call('PEXPIRE', key.failed(prefix), keep_for + 1000)
    redis.call('PEXPIRE', key.failed_tasks(prefix), keep_for + 1000)
    drop_lapsed_failures(prefix, now)
    local over = math.min(redis.call('ZCARD', key.failed(prefix)) - limit, 1000)
    if over > 0 then
        local gone = redis.call('ZPOPMIN', key.failed(prefix), over)
        local ids = {}
        for i = 1, #gone, 2 do ids[#ids + 1] = gone[i] end
        redis.call('HDEL', key.failed_tasks(prefix), unpack(ids))
    end
end

-- The statuses of a task that has not started: what len(q) counts and
-- discard_pending drops.
local NOT_STARTED = {enqueued = true, delayed = true, pending = true}

-- The results a task about to be stored takes as arguments (``refs``, their
-- task ids): {ready = {{id, result}, ...}, pending = {id, ...}}; nil when one
-- has no result left to take (taken, expired, unknown, or dropped by its task).
local function arguments_for(prefix, refs)
    local ready, pending = {}, {}
    for _, ref in ipairs(refs) do
        local value = redis.call('LINDEX', key.result(prefix, ref), 0)
        local task = key.task(prefix, ref)
        if value then
            ready[#ready + 1] = {ref, value}
        elseif redis.call('EXISTS', task) == 1 and redis.call('HGET', task, 'keep') ~= '0' then
            pending[#pending + 1] = ref
        else
            return nil
        end
    end
    return {ready = ready, pending = pending}
end

-- Store a task that takes the ``arguments`` (from arguments_for): queued at
-- once when they are all ready, else held until set_result.lua hands over
-- the last one. A ready result that is a filed failure notes the task among
-- that entry's dependants (link_dependant).
local function store_deferred(prefix, id, message, keep, arguments)
    local task = key.task(prefix, id)
    redis.call('HSET', task, 'status', 'pending', 'keep', keep, 'msg', message,
               'deferred', '1', 'waiting', #arguments.pending)
    for _, pair in ipairs(arguments.ready) do
        hand_over(prefix, task, pair[1], pair[2])
        link_dependant(prefix, pair[1], id)
    end
    for _, ref in ipairs(arguments.pending) do
        redis.call('HSET', key.task(prefix, ref), 'deps', '1')
        redis.call('SADD', key.deps(prefix, ref), id)
    end
    if #arguments.pending == 0 then
        schedule(prefix, id, 0)
    else
        redis.call('SADD', key.deferred(prefix), id)
    end
end
