"""Broker.inspect: all that is known of one task, through its life."""

from __future__ import annotations

import os
import socket
import threading
import time

from worq import TaskSpace, get_broker
from worq.pool.thread import WorkerPool
from worq.testing import WAIT, eventually

ts = TaskSpace("look")
release = threading.Event()


@ts.task
def slow(n: int) -> int:
    assert release.wait(WAIT)
    if n < 0:
        raise ValueError("negative")
    return n


@ts.task
def add(a: int, b: int) -> int:
    return a + b


@ts.task
def size(text: str) -> int:
    return len(text)


def test_a_task_seen_through_its_life(url: str) -> None:
    broker = get_broker(url, "look")
    broker.expose(ts)
    q = broker.queue()
    before = time.time()
    first = q.look.slow(1)
    waiting = q.look.add(first, 2)
    assert broker.inspect("no-such-task") is None

    pending = broker.inspect(waiting.id)
    assert pending is not None
    assert (pending.name, pending.status, pending.refs, pending.attempts) == (
        "look.add", "pending", (first.id,), 0,
    )  # fmt: skip
    assert pending.message is not None
    assert pending.message.startswith(b'{"v":3,"name":"look.add"')
    assert pending.due_at is not None
    assert before - 0.001 <= pending.due_at <= time.time()
    queued = broker.inspect(first.id)
    assert queued is not None
    assert (queued.status, queued.dependants, queued.started_at) == (
        "enqueued",
        (waiting.id,),
        None,
    )

    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.05)
    try:
        eventually(lambda: getattr(broker.inspect(first.id), "status", None), "processing")
        running = broker.inspect(first.id)
        assert running is not None
        assert running.worker == f"{socket.gethostname()}:{os.getpid()}"
        assert running.started_at is not None
        assert before - 0.001 <= running.started_at <= time.time()
        assert running.attempts == 1
        release.set()
        assert waiting.wait(WAIT)
        done = broker.inspect(first.id)
        assert done is not None
        assert done.status == "completed"  # its outcome waits, its run's record with it
        assert (done.name, done.outcome, done.attempts) == ("look.slow", b"1", 1)
        assert done.worker == running.worker
        assert done.started_at == running.started_at
        assert done.finished_at is not None
        assert running.started_at <= done.finished_at <= time.time()
        assert first.wait(WAIT)
        assert broker.inspect(first.id) is None  # taken: nothing is left
        failing = q.look.slow(-1)
        eventually(lambda: getattr(broker.inspect(failing.id), "status", None), "failed")
        failed = broker.inspect(failing.id)
        assert failed is not None
        assert (failed.name, failed.error, failed.attempts) == (
            "look.slow", "ValueError: negative", 1,
        )  # fmt: skip
        assert failed.failed_at is not None
        assert failed.message is not None
    finally:
        release.set()
        pool.stop()
        release.clear()


def test_a_finished_task_keeps_a_big_message_only_in_part(url: str) -> None:
    broker = get_broker(url, "look")
    broker.expose(ts)
    release.set()
    try:
        q = broker.queue()
        small = q.look.add(1, 2)
        big = q.look.size("x" * 5000)
        pool = WorkerPool(broker, workers=1)
        pool.start(timeout=0.05)
        try:
            eventually(lambda: getattr(broker.inspect(big.id), "status", None), "completed")
            eventually(lambda: getattr(broker.inspect(small.id), "status", None), "completed")
        finally:
            pool.stop()
        kept, cut = broker.inspect(small.id), broker.inspect(big.id)
        assert kept is not None
        assert kept.message is not None
        assert kept.message.endswith(b'{"args":[1,2]}')
        assert cut is not None
        assert cut.message == b'{"v":3,"name":"look.size"}\n'  # its envelope alone
        assert cut.name == "look.size"
    finally:
        release.clear()
