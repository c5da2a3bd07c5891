"""Celery: Redis broker and Redis result backend, prefork worker."""

from __future__ import annotations

import os
import sys
from typing import Any

from _common import URL_ENV, WAIT, Peer
from celery import Celery

# The driver sets the URL before importing this module; the worker inherits it.
app = Celery("peer_celery", broker=os.environ[URL_ENV], backend=os.environ[URL_ENV])


@app.task
def noop(value: int) -> int:
    """The benchmark's task: returns its argument."""
    return value


class CeleryClient:
    """``noop.delay(i)``, then ``result.get(timeout=...)`` (a pub/sub wait on Redis)."""

    def submit(self, value: int) -> Any:
        return noop.delay(value)

    def wait(self, handle: Any) -> Any:
        return handle.get(timeout=WAIT)

    def close(self) -> None:
        app.close()


_COMMAND = [
    sys.executable, "-m", "celery", "-A", "peer_celery", "worker",
    "--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING",
]  # fmt: skip

PEER = Peer(
    name="Celery",
    distributions=("celery", "kombu"),
    workers="`celery -A peer_celery worker --pool prefork --concurrency 2`: the main process "
    "and 2 prefork child processes",
    commands=lambda: [_COMMAND],
    processes=3,
    client=CeleryClient,
    deviations=(
        "none: --pool prefork, --concurrency 2 (the CPU count here) and --loglevel WARNING are "
        "the worker's defaults on this machine, spelled out",
    ),
    notes=(
        "defaults kept: worker_prefetch_multiplier 4, acks_late off, mingle, gossip and "
        "heartbeat events on (their pub/sub traffic is in the Redis command count)",
    ),
)
