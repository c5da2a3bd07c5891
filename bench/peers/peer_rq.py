"""RQ: two ``rq worker`` processes (its default forking Worker), ``q.enqueue``."""

from __future__ import annotations

from typing import Any

from _common import WAIT, Peer, bin_path, url
from redis import Redis
from rq import Queue


def noop(value: int) -> int:
    """The benchmark's task: returns its argument."""
    return value


class RqClient:
    """``q.enqueue(noop, i)``, then ``job.latest_result(timeout=...)`` (a blocking XREAD)."""

    def __init__(self) -> None:
        self.connection = Redis.from_url(url())
        self.q = Queue(connection=self.connection)

    def submit(self, value: int) -> Any:
        return self.q.enqueue(noop, value)

    def wait(self, handle: Any) -> Any:
        result = handle.latest_result(timeout=int(WAIT))
        if result is None:
            raise TimeoutError(f"RQ job {handle.id} did not finish in {WAIT}s")
        if result.type != result.Type.SUCCESSFUL:
            raise RuntimeError(f"RQ job {handle.id} failed: {result.exc_string}")
        return result.return_value

    def close(self) -> None:
        self.connection.close()


def _commands() -> list[list[str]]:
    worker = [bin_path("rq"), "worker", "--url", url(), "--logging_level", "WARNING"]
    return [[*worker, "--name", f"bench-{number}"] for number in (1, 2)]


PEER = Peer(
    name="RQ",
    distributions=("rq",),
    workers="2 `rq worker` processes (RQ's way to run N workers), default forking `Worker`: "
    "each job runs in a work-horse process forked for it",
    commands=_commands,
    processes=2,
    client=RqClient,
    deviations=(
        "--logging_level WARNING (default INFO logs every job twice): no per-task logging",
    ),
    notes=(
        "the forking Worker is RQ's default and documented production class (SimpleWorker, "
        "which runs jobs in the worker process, is documented for tests and debugging); "
        "its fork per job dominates this no-op workload",
    ),
)
