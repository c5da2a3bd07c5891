"""Huey: ``RedisHuey`` run by ``huey_consumer`` with 2 worker processes."""

from __future__ import annotations

import os
import signal
from typing import Any

from _common import URL_ENV, WAIT, Peer, bin_path
from huey import RedisHuey

# The driver sets the URL before importing this module; the consumer inherits it.
huey = RedisHuey("bench", url=os.environ[URL_ENV], notify_result=True)


@huey.task()
def noop(value: int) -> int:
    """The benchmark's task: returns its argument."""
    return value


class HueyClient:
    """``noop(i)`` (calling a task enqueues it), then ``result.get(blocking=True)``."""

    def submit(self, value: int) -> Any:
        return noop(value)

    def wait(self, handle: Any) -> Any:
        return handle.get(blocking=True, timeout=WAIT)

    def close(self) -> None:
        huey.storage.pool.disconnect()


PEER = Peer(
    name="Huey",
    distributions=("huey",),
    workers="`huey_consumer peer_huey.huey -w 2 -k process`: the consumer process (which also "
    "runs the scheduler) and 2 worker processes",
    commands=lambda: [[bin_path("huey_consumer"), "peer_huey.huey", "-w2", "-kprocess", "-q"]],
    processes=3,
    client=HueyClient,
    stop_signal=signal.SIGINT,
    deviations=(
        "-w 2 -k process (defaults: 1 worker, thread): the benchmark's 2 worker processes",
        "-q (default logging is INFO, which logs every task): no per-task logging",
        "RedisHuey(notify_result=True) (default False): Huey 3.0's release notes name it the "
        "option for low-latency result fetching on Redis (a BLPOP on a notify key instead of "
        "Result.get's polling with backoff from 50 ms); this workload blocks on every result",
    ),
    notes=(
        "the workers pop tasks with a blocking BRPOP (RedisHuey's default blocking=True), so "
        "the consumer's polling delay options do not apply",
    ),
)
