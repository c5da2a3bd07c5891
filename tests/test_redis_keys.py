"""Every key a worq script touches is one of RedisKeys' kinds, in its queue's slot.

Scripts build some keys themselves (a dependant's task hash, the lease
counter, a shared result), out of sight of the KEYS Python passes them, so
recording what Python passes proves nothing about those. This test watches
the server instead: a MONITOR connection sees every command a script runs
(marked ``lua``), and ``COMMAND GETKEYS`` says which of its arguments are keys.
"""

from __future__ import annotations

import inspect
import re
import threading
import uuid
from collections.abc import Callable

import attrs
import pytest
import redis
from redis.crc import key_slot

from worq.const import TaskStatus
from worq.queue._redis_keys import RedisKeys
from worq.queue.redis import TaskQueue
from worq.testing import WAIT, eventually
from worq.typing import (
    DeferResult,
    FailureNote,
    FireResult,
    NewTask,
    RetryResult,
    ScheduleState,
    Taken,
)

NAMES = ["default", 'a:b*c [?] "é"\\']
"""Queue names: a plain one, and one with glob, quote, escape and non-ASCII characters."""

NOT_KINDS = {
    "pattern": "a SCAN pattern matching every key of the queue",
    "notify": "an async client's pub/sub channel, which set_result publishes on",
}
"""Public members of RedisKeys that name no key."""

_HOLE = "\x00hole\x00"
"""Stands for the id or token in a key name, to cut the name around it."""

Command = tuple[int, bytes, list[bytes]]
"""One command MONITOR saw: database, client (``b"lua"`` inside a script), arguments."""

_LINE = re.compile(rb"\d+\.\d+ \[(\d+) ([^\]]+)\] (.*)", re.DOTALL)
_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPE = re.compile(rb"\\(x[0-9a-f]{2}|.)", re.DOTALL)
_ESCAPED = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}
"""The escapes of Redis's ``sdscatrepr`` besides ``\\xHH`` and the quoted ``\\\\``, ``\\"``."""


def kinds(keys: RedisKeys) -> dict[str, re.Pattern[bytes]]:
    """A full-match pattern for each kind of key, read off RedisKeys itself.

    Each public property names one key; each public method one key per id or
    token, whatever it holds.
    """
    assert set(NOT_KINDS) <= set(vars(RedisKeys)), "NOT_KINDS names a member that is gone"
    found: dict[str, re.Pattern[bytes]] = {}
    for name, member in vars(RedisKeys).items():
        if name.startswith("_") or name in NOT_KINDS:
            continue
        if isinstance(member, property):
            found[name] = re.compile(re.escape(getattr(keys, name).encode()))
        elif inspect.isfunction(member):
            head, tail = getattr(keys, name)(_HOLE).split(_HOLE)
            found[name] = re.compile(
                re.escape(head.encode()) + b".+" + re.escape(tail.encode()), re.DOTALL
            )
    return found


def _unescape(match: re.Match[bytes]) -> bytes:
    code = match[1]
    if len(code) == 3:  # xHH
        return bytes([int(code[1:], 16)])
    return _ESCAPED.get(code, code)


def parse(line: bytes) -> Command:
    """One MONITOR line, its arguments unquoted byte for byte."""
    match = _LINE.fullmatch(line)
    assert match is not None, line
    db, client, rest = match.groups()
    quoted = _ARG.findall(rest)
    assert b" ".join(b'"' + arg + b'"' for arg in quoted) == rest, f"misread {line!r}"
    return int(db), client, [_ESCAPE.sub(_unescape, arg) for arg in quoted]


def watch(url: str, run: Callable[[], None]) -> list[Command]:
    """The commands the server at ``url`` ran during ``run()``, in order."""
    client = redis.Redis.from_url(url, socket_timeout=WAIT)
    marker = uuid.uuid4().hex.encode()
    try:
        with client.monitor() as monitor:  # type: ignore[no-untyped-call]  # untyped in redis-py
            run()
            client.echo(marker)  # MONITOR shows commands in order: this one comes last
            seen: list[Command] = []
            while True:
                command = parse(monitor.connection.read_response())
                if command[1] != b"lua" and command[2] == [b"ECHO", marker]:
                    return seen
                seen.append(command)
    finally:
        client.close()


def take(tq: TaskQueue, task_id: str) -> Taken:
    taken = tq.get(WAIT)
    assert taken is not None, "no task arrived"
    assert taken.task_id == task_id
    return taken


def lapse(tq: TaskQueue, task_id: str) -> Taken:
    """Take ``task_id`` and let its lease lapse at once."""
    taken = take(tq, task_id)
    assert tq.renew_lease(task_id, 0.01, taken.lease)
    eventually(lambda: tq.get_status(task_id), TaskStatus.LAPSED)
    return taken


def workload(tq: TaskQueue) -> None:
    """Run every script, down every path that touches a kind of key."""
    # A worker blocked in get() is handed a task by BLMOVE: get.lua takes it
    # out of the claimed list.
    got: list[Taken | None] = []
    waiter = threading.Thread(target=lambda: got.append(tq.get(WAIT)))
    waiter.start()
    eventually(lambda: any(c["cmd"] == "blmove" for c in tq.redis.client_list()), True)
    assert tq.enqueue_task("first", b"F", keep_result=True, track=True)
    waiter.join(WAIT)
    first = got[0]
    assert first is not None
    assert first.task_id == "first"
    assert tq.pop_result("first", 0.05) is None  # waits while it runs
    assert tq.renew_lease("first", 60, first.lease)
    assert tq.set_result("first", b"f", 60, first.lease)
    assert tq.pop_result("first", 0) == b"f"
    assert tq.pop_result("first", 0) is TaskStatus.EXPIRED

    # Delayed, untracked: the worker skips its wake-up call until it is due.
    assert tq.enqueue_task("later", b"L", keep_result=False, track=False, delay=0.05)
    assert tq.size() == 1
    assert tq.get_status("later") is TaskStatus.DELAYED
    assert take(tq, "later").lease == ""
    assert tq.get(0) is None

    # Retried, then lapsed: reclaimed by id, and by a sweep.
    odd = 'odd id "with" \\ spaces\n'
    assert tq.enqueue_task(odd, b"O", keep_result=True, track=True)
    assert tq.retry_task(odd, take(tq, odd).lease, 0)
    lapse(tq, odd)
    assert tq.pop_result(odd, 0) is TaskStatus.LAPSED
    reclaimed = tq.reclaim_task(odd)
    assert reclaimed is not None
    assert reclaimed.attempt == 2
    assert tq.set_result(odd, b"o", 60, reclaimed.lease)
    assert tq.enqueue_task("swept", b"S", keep_result=True, track=True)
    lapse(tq, "swept")
    assert [t.task_id for t in tq.reclaim(10)] == ["swept"]

    # One result shared by several dependants, before and after it is ready.
    assert tq.enqueue_task("base", b"B", keep_result=True, track=True)
    base = take(tq, "base")
    assert tq.defer_task("d1", b"D1", ["base"], keep_result=True) is DeferResult.STORED
    assert tq.defer_task("d2", b"D2", ["base"], keep_result=False) is DeferResult.STORED
    assert tq.get_status("d1") is TaskStatus.PENDING
    assert tq.set_result("base", b"b", 60, base.lease)
    assert tq.defer_task("d3", b"D3", ["base"], keep_result=True) is DeferResult.STORED
    ran = set()
    for _ in range(3):  # in the order set_result found them, then d3
        taken = tq.get(WAIT)
        assert taken is not None, "no task arrived"
        assert tq.get_arguments(taken.task_id) == {"base": b"b"}
        assert tq.set_result(taken.task_id, b"d", 60, taken.lease)
        ran.add(taken.task_id)
    assert ran == {"d1", "d2", "d3"}

    # Finished from outside, while it waits in the queue.
    assert tq.enqueue_task("outside", b"X", keep_result=True, track=True)
    assert tq.set_result("outside", b"x", 60)

    # A purge drops a queued task, a delayed one and the pending chain on the first.
    assert tq.enqueue_task("root", b"R", keep_result=True, track=True)
    assert tq.enqueue_task("soon", b"S", keep_result=True, track=True, delay=60)
    assert tq.defer_task("c1", b"C1", ["root"], keep_result=True) is DeferResult.STORED
    assert tq.defer_task("c2", b"C2", ["c1"], keep_result=True) is DeferResult.STORED
    assert tq.size() == 4
    assert tq.discard_pending() == 4
    assert tq.size() == 0
    assert tq.get_status("c2") is None

    # A schedule registered, looked at, fired, skipped while its task waits
    # (overlap), passed over, and fired again once that task finished.
    fire = NewTask("schedule:s:1", b"T", keep_result=True, track=True)
    tq.register_schedules([("s", ScheduleState(b"{}", 0, 1))])
    assert tq.schedule_states(5)[0]["s"].last_ms == 0
    assert tq.fire_schedule("s", 1, 2, fire, skip_running=True) is FireResult.FIRED
    later = attrs.evolve(fire, task_id="schedule:s:2")
    assert tq.fire_schedule("s", 2, 3, later, skip_running=True) is FireResult.SKIPPED
    assert tq.fire_schedule("s", 3, 4, None, skip_running=True) is FireResult.SKIPPED
    assert tq.set_result("schedule:s:1", b"t", 60)
    assert tq.fire_schedule("s", 4, 5, later, skip_running=True) is FireResult.FIRED
    assert tq.fire_schedule("s", 4, 5, later, skip_running=True) is FireResult.DONE

    # A pool announced, one whose record lapsed (dropped), and one gone.
    tq.announce_pool("short-lived", b"{}", 0.001)
    tq.announce_pool("live", b"{}", 60)
    eventually(lambda: sorted(tq.live_pools()), ["live"])
    tq.announce_pool("live", b"{}", 0)
    assert tq.live_pools() == {}

    # Failures filed (one under a lease, one handed to a pending dependant, one
    # forgotten once taken), listed, retried (the dependant along), discarded.
    note = FailureNote("failed", "boom", 10, 60)
    assert tq.set_result("schedule:s:2", b"t", 60)
    assert tq.enqueue_task("sour", b'{"v":3,"name":"n"}\n{}', keep_result=True, track=True)
    assert tq.defer_task("sweet", b'{"v":3,"name":"n","refs":["sour"]}\n{}', ["sour"],
                         keep_result=True) is DeferResult.STORED  # fmt: skip
    assert tq.next_in_line() == ("sour", b'{"v":3,"name":"n"}')
    assert tq.set_result("sour", b"f", 60, take(tq, "sour").lease, note)
    assert tq.set_result("sweet", b"f", 60, take(tq, "sweet").lease, note)
    tq.file_failure("forgotten", b'{"v":3,"name":"n"}\n{}', 1, note)
    assert [f.task_id for f in tq.failed_tasks(10)] == ["forgotten", "sweet", "sour"]
    assert tq.retry_failed(["sour"]) == [("sour", RetryResult.RETRIED),
                                         ("sweet", RetryResult.RETRIED)]  # fmt: skip
    record = tq.inspect("sweet")
    assert record is not None
    assert record.status == "pending"
    assert record.filed is None
    assert tq.discard_failed(None) == ["forgotten"]
    assert tq.discard_pending() == 2

    # Per-minute counts added by two heartbeats, and read back.
    tq.add_stats({(7, "succeeded"): 2, (7, "d3"): 2, (8, "failed"): 1}, 60)
    tq.add_stats({(7, "succeeded"): 1}, 60)
    assert tq.stats(6, 9) == {7: {"succeeded": 3, "d3": 2}, 8: {"failed": 1}}

    assert tq.name in tq.queue_names()


def hash_tag(key: bytes) -> bytes:
    """What Redis Cluster hashes: the text inside the key's first brace pair."""
    start = key.index(b"{")
    return key[start + 1 : key.index(b"}", start + 1)]


@pytest.mark.parametrize("name", NAMES)
def test_every_key_a_script_touches_is_a_documented_kind_in_the_queue_slot(
    clean_redis_url: str, name: str
) -> None:
    """Each key of each command run from Lua matches exactly one RedisKeys kind,
    carries the queue's hash tag, and the workload touches every kind.

    No kind is Python's alone: BLMOVE moves ids from the queue to the claimed
    list outside any script, but get.lua and reclaim.lua touch both lists too.
    """
    tq = TaskQueue(clean_redis_url, name)
    client = redis.Redis.from_url(clean_redis_url)
    try:
        commands = watch(clean_redis_url, lambda: workload(tq))
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        patterns = kinds(tq.keys)
        slot = key_slot(name.encode())
        seen: set[str] = set()
        scripted = [argv for on, who, argv in commands if who == b"lua" and on == db]
        assert scripted, "MONITOR showed no command run from a script"
        specs = client.command()
        for argv in scripted:
            if not specs[argv[0].decode().lower()]["key_specifications"]:
                continue  # TIME: Redis says it takes no key (and GETKEYS refuses it)
            for named in client.command_getkeys(*argv):
                # redis-py decodes the keys (as UTF-8, as worq encodes them)
                key = named.encode() if isinstance(named, str) else named
                matching = [kind for kind, pattern in patterns.items() if pattern.fullmatch(key)]
                assert len(matching) == 1, f"{key!r} in {argv!r} matches kinds {matching}"
                assert hash_tag(key) == name.encode(), f"{key!r} lacks hash tag {{{name}}}"
                assert key_slot(key) == slot, key
                seen |= set(matching)
        ran = {argv[1] for _, who, argv in commands if who != b"lua" and argv[0] == b"EVALSHA"}
        assert ran >= {script.sha.encode() for script in tq._scripts.values()}, "a script never ran"
        assert seen == set(patterns), f"the workload touched no {set(patterns) - seen}"
    finally:
        client.close()
        tq.close()
