"""taskiq: taskiq-redis's ``RedisStreamBroker`` and ``RedisAsyncResultBackend``."""

from __future__ import annotations

import os
from typing import Any

from _common import URL_ENV, WAIT, Peer, bin_path
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

# The driver sets the URL before importing this module; the workers inherit it.
broker = RedisStreamBroker(url=os.environ[URL_ENV]).with_result_backend(
    RedisAsyncResultBackend(redis_url=os.environ[URL_ENV])
)


@broker.task
async def noop(value: int) -> int:
    """The benchmark's task: returns its argument."""
    return value


class TaskiqClient:
    """``await noop.kiq(i)``, then ``await task.wait_result(timeout=...)``."""

    async def open(self) -> None:
        await broker.startup()

    async def submit(self, value: int) -> Any:
        return await noop.kiq(value)

    async def wait(self, handle: Any) -> Any:
        result = await handle.wait_result(timeout=WAIT)
        if result.is_err:
            raise RuntimeError(f"taskiq task {handle.task_id} failed: {result.error}")
        return result.return_value

    async def close(self) -> None:
        await broker.shutdown()


PEER = Peer(
    name="taskiq",
    distributions=("taskiq", "taskiq-redis"),
    workers="`taskiq worker peer_taskiq:broker --workers 2`: a main process and 2 worker "
    "processes (2 is the default); each keeps its default max_async_tasks=100",
    commands=lambda: [
        [
            bin_path("taskiq"),
            "worker",
            "peer_taskiq:broker",
            "--workers",
            "2",
            "--log-level",
            "WARNING",
        ]
    ],
    processes=3,
    client=TaskiqClient,
    deviations=("--log-level WARNING (default INFO logs every task): no per-task logging",),
    notes=(
        "RedisStreamBroker is the broker taskiq-redis's README shows first (acknowledged "
        "delivery through a consumer group); task.wait_result() polls the result backend every "
        "check_interval=0.2 s (default kept)",
        "its worker processes log that they shut the broker down on SIGTERM but stay alive "
        "(reported upstream for taskiq 0.12.4 / taskiq-redis 1.2.3 as taskiq-python/taskiq#646): "
        "the driver kills them after its 30 s stop timeout and the row says so",
    ),
)
