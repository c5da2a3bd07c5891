"""worq, Redis backend, run by its own CLI: ``worq worker peer_worq:init URL``."""

from __future__ import annotations

import sys
from typing import Any

from _common import WAIT, Peer, url

import worq.aio
from worq import get_broker
from worq.core import Broker


def noop(value: int) -> int:
    """The benchmark's task: returns its argument."""
    return value


async def anoop(value: int) -> int:
    """The benchmark's async task, for the asyncio pool: returns its argument."""
    return value


def init(broker_url: str) -> Broker:
    """The CLI's init function (every worker process calls it too)."""
    broker = get_broker(broker_url)
    broker.expose(noop)
    broker.expose(anoop)
    return broker


class WorqClient:
    """``q.noop(i)`` and ``d.wait(timeout)``, as bench/throughput.py drives worq."""

    def __init__(self) -> None:
        self.broker = get_broker(url())
        self.q = self.broker.queue()

    def submit(self, value: int) -> Any:
        return self.q.noop(value)

    def wait(self, handle: Any) -> Any:
        if not handle.wait(WAIT):
            raise TimeoutError(f"worq task {handle.id} did not finish in {WAIT}s")
        return handle.value

    def close(self) -> None:
        self.broker.close()


class AsyncWorqClient:
    """``await aq.submit(anoop, i)`` and ``await d.wait(timeout)`` through worq.aio,
    as the asyncio peers (arq, SAQ, taskiq) are driven."""

    def __init__(self) -> None:
        self.q = worq.aio.get_queue(url())

    async def open(self) -> None:
        """Nothing to do: the queue connects on first use."""

    async def submit(self, value: int) -> Any:
        return await self.q.submit(anoop, value)

    async def wait(self, handle: Any) -> Any:
        if not await handle.wait(WAIT):
            raise TimeoutError(f"worq task {handle.id} did not finish in {WAIT}s")
        return handle.value

    async def close(self) -> None:
        await self.q.aclose()


def _command(pool: str, size: str = "--workers", count: str = "2") -> list[str]:
    return [
        sys.executable, "-m", "worq", "worker", "peer_worq:init", url(),
        "--pool", pool, size, count, "--log-level", "warning",
    ]  # fmt: skip


_LOG_LEVEL = (
    "--log-level warning (the worker CLI's default is info, which logs task.started and "
    "task.succeeded for every task): per-task log lines would measure logging, not the queue; "
    "every system here runs without per-task logging"
)

PROCESS_POOL = Peer(
    name="worq process pool",
    distributions=("worq",),
    workers="`worq worker --pool process --workers 2`: a pool process and 2 worker processes",
    commands=lambda: [_command("process")],
    processes=3,
    client=WorqClient,
    deviations=(_LOG_LEVEL,),
    notes=("the pool's blocking wait for a task lasts 10 s (the CLI default for process)",),
)

THREAD_POOL = Peer(
    name="worq thread pool",
    distributions=("worq",),
    workers="`worq worker --pool thread --workers 2`: 1 process, 2 threads",
    commands=lambda: [_command("thread")],
    processes=1,
    client=WorqClient,
    deviations=(_LOG_LEVEL,),
    notes=("the pool's blocking wait for a task lasts 1 s (the CLI default for thread)",),
)

ASYNCIO_POOL = Peer(
    name="worq asyncio pool",
    distributions=("worq",),
    workers="`worq worker --pool asyncio --concurrency 100`: 1 process, 1 event loop",
    commands=lambda: [_command("asyncio", "--concurrency", "100")],
    processes=1,
    client=AsyncWorqClient,
    deviations=(_LOG_LEVEL,),
    notes=(
        "the async client (worq.aio) sends `async def anoop` tasks and awaits them on one "
        "loop, as arq, SAQ and taskiq are driven",
    ),
)
