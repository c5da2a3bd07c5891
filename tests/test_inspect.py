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
        assert before <= running.started_at <= time.time()
        assert running.attempts == 1
        release.set()
        assert waiting.wait(WAIT)
        done = broker.inspect(first.id)
        assert done is not None
        assert done.status == "completed"
        assert (done.name, done.message, done.outcome) == ("", None, b"1")
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
