#!/usr/bin/env python
"""Count Redis round trips per task operation.

Every round trip is one write to a connection (a command, or many
pipelined), so the count of ``send_packed_command`` calls on redis-py's
connections during an operation is its number of round trips, whether the
write comes from redis-py's client or from the connections worq's Redis
backend holds (``worq.queue._redis_connections``).
Targets: one each for enqueue, get, set_result and pop_result, one for a
process pool worker's run that stores the outcome and takes the next task,
and at most k + 2 for the whole enqueue of a task with k deferred arguments.

Uses WORQ_BENCH_REDIS_URL if set, else a private redis-server on a free port.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from _servers import redis_url  # bench/ is the script directory
from redis.connection import AbstractConnection

from worq import get_broker
from worq.models import TaskMessage
from worq.pool._leases import LeaseKeeper
from worq.pool._pipeline import TaskPipeline
from worq.pool._worker import NEXT_TASK_WAIT
from worq.runner import EncodedOutcome

K = 5
"""Deferred arguments of the fan-in task."""


class RoundTrips:
    """Counts the writes of every redis-py connection in this process."""

    def __init__(self) -> None:
        self.count = 0
        original = AbstractConnection.send_packed_command

        def counting(conn: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(conn, *args, **kwargs)  # type: ignore[no-untyped-call]  # untyped in redis-py

        AbstractConnection.send_packed_command = counting  # type: ignore[method-assign, assignment]  # probe

    def during(self, operation: Callable[[], Any]) -> tuple[int, Any]:
        """Round trips made by ``operation()``, and what it returned."""
        before = self.count
        result = operation()
        return self.count - before, result


RUN = "run in the pools' pipeline (incl. set_result)"
RUN_TAKE = "run, storing the outcome and taking the next task (process pool worker)"
RUN_FAN_IN = f"run with {K} deferred arguments"


def add(values: list[int]) -> int:
    return sum(values)


def num(value: int) -> int:
    return value


def measure(url: str) -> dict[str, int]:
    """Round trips of each operation, scripts already loaded (steady state)."""
    probe = RoundTrips()
    broker = get_broker(url, "bench")
    broker.expose(num)
    broker.expose(add)
    client = get_broker(url, "bench")
    q = client.queue()

    # The pools' own path: a task taken with next_task (as the thread pool
    # does) goes through the pipeline both pools share; with take_next, as a
    # process pool's worker takes its next task (with its short wait).
    leases = LeaseKeeper(broker, "bench")
    pipeline = TaskPipeline(broker, leases, threading.Event(), next_task_wait=NEXT_TASK_WAIT)

    def process(task: TaskMessage, take_next: bool = False) -> Any:
        def run(arguments: Mapping[str, bytes]) -> EncodedOutcome:
            outcome = broker.runner.run(task, arguments)
            encoded = broker.runner.encode_outcome(task, outcome.value)
            return EncodedOutcome(encoded, outcome.retry_reason)

        return pipeline.process(task, run, take_next)

    def run_one() -> None:
        task = broker.next_task(timeout=1)
        if task is None:
            raise RuntimeError("benchmark task did not arrive")
        process(task)

    warm = q.num(0)  # loads every script once (NOSCRIPT, SCRIPT LOAD)
    run_one()
    warm.wait(5)
    q.add([q.num(1)])
    run_one()
    run_one()

    counts: dict[str, int] = {}
    counts["enqueue"], deferred = probe.during(lambda: q.num(1))
    counts["get"], task = probe.during(lambda: broker.next_task(timeout=1))
    if task is None:
        raise RuntimeError("benchmark task did not arrive")
    counts[RUN], _ = probe.during(lambda: process(task))
    counts["pop_result (wait on a finished task)"], _ = probe.during(lambda: deferred.wait(5))
    q.num(2)
    after = q.num(3)
    task = broker.next_task(timeout=1)
    if task is None:
        raise RuntimeError("benchmark task did not arrive")
    counts[RUN_TAKE], taken = probe.during(lambda: process(task, take_next=True))
    if taken is None:
        raise RuntimeError("the next task was not taken with the outcome")
    envelope, payload = taken
    process(TaskMessage.join(envelope, broker.codec.decode_payload(payload)))
    after.wait(5)
    args = [q.num(n) for n in range(K)]
    counts[f"enqueue with {K} deferred arguments"], fan_in = probe.during(lambda: q.add(args))
    for _ in range(K):
        run_one()
    fan_task = broker.next_task(timeout=1)
    if fan_task is None:
        raise RuntimeError("fan-in task did not arrive")
    counts[RUN_FAN_IN], _ = probe.during(lambda: process(fan_task))
    fan_in.wait(5)
    if fan_in.value != sum(range(K)):
        raise RuntimeError(f"wrong fan-in result {fan_in.value!r}")
    leases.close()
    broker.close()
    client.close()
    return counts


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger("warning"))
    with redis_url() as url:
        counts = measure(url)
    targets = {
        "enqueue": 1,
        "get": 1,
        RUN: 1,
        RUN_TAKE: 1,
        "pop_result (wait on a finished task)": 1,
        f"enqueue with {K} deferred arguments": K + 2,
        RUN_FAN_IN: 2,
    }
    width = max(map(len, counts))
    print(f"{'operation':<{width}}  round trips  target")
    worst = 0
    for name, count in counts.items():
        target = targets[name]
        mark = "" if count <= target else "  OVER TARGET"
        worst = max(worst, count - target)
        print(f"{name:<{width}}  {count:>11}  {target:>6}{mark}")
    return 1 if worst > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
