"""arq: two ``arq`` worker processes, ``pool.enqueue_job`` and ``job.result``."""

from __future__ import annotations

from typing import Any, ClassVar

from _common import WAIT, Peer, bin_path, url
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import JobStatus, ResultNotFound


async def noop(ctx: dict[str, Any], value: int) -> int:
    """The benchmark's task: returns its argument (arq passes a context first)."""
    return value


class WorkerSettings:
    """What ``arq peer_arq.WorkerSettings`` runs; the URL comes from the environment."""

    functions: ClassVar[list[Any]] = [noop]
    redis_settings = RedisSettings.from_dsn(url())


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "level": "WARNING"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}
"""arq's own log config at WARNING (``--custom-log-dict``); its default logs every job."""


class ArqClient:
    """``await pool.enqueue_job("noop", i)``, then ``await job.result(timeout=...)``."""

    pool: Any = None

    async def open(self) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(url()))

    async def submit(self, value: int) -> Any:
        return await self.pool.enqueue_job("noop", value)

    async def wait(self, handle: Any) -> Any:
        return await self._result(handle)

    @staticmethod
    async def _result(job: Any) -> Any:
        """``job.result``, again when it gave up on a job that exists: its poll reads
        the result key, then the queue, not atomically, so a job finishing between
        the two reads is seen in neither and reported as not found."""
        while True:
            try:
                return await job.result(timeout=WAIT)
            except ResultNotFound:
                if await job.status() is JobStatus.not_found:
                    raise

    async def close(self) -> None:
        await self.pool.aclose()


def _commands() -> list[list[str]]:
    worker = [bin_path("arq"), "peer_arq.WorkerSettings"]
    worker += ["--custom-log-dict", "peer_arq.LOG_CONFIG"]
    return [worker, worker]


PEER = Peer(
    name="arq",
    distributions=("arq",),
    workers="2 `arq peer_arq.WorkerSettings` processes (arq runs one asyncio worker per "
    "process); each keeps its default max_jobs=10 concurrent jobs",
    commands=_commands,
    processes=2,
    client=ArqClient,
    deviations=(
        "--custom-log-dict with the arq logger at WARNING (the CLI's default config is INFO, "
        "which logs every job start and result): no per-task logging",
        "the client calls job.result() again when it raises ResultNotFound for a job that "
        "job.status() still finds: result() reads the result key, then the queue, not "
        "atomically, so a job finishing between the two reads is in neither (the row failed "
        "on it otherwise)",
    ),
    notes=(
        "defaults kept: the worker polls the queue every poll_delay=0.5 s when idle and "
        "job.result() polls for the result every 0.5 s, so a single call's latency is "
        "dominated by these polls",
    ),
)
