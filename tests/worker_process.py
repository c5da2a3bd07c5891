"""A thread pool in a process of its own, until SIGTERM: the far end of cross-process tests.

Run as ``python -m tests.worker_process URL``; prints ``ready`` once serving.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import structlog

from worq import TaskSpace, get_broker
from worq.pool.thread import WorkerPool

ts = TaskSpace("remote")


@ts.task
def pid() -> int:
    """The worker's process id."""
    return os.getpid()


@ts.task
def add(values: list[int]) -> int:
    """Sum of the values."""
    return sum(values)


def main(url: str) -> None:
    """Serve the ``remote`` tasks on ``url`` until SIGTERM."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    broker = get_broker(url)
    broker.expose(ts)
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.2)
    print("ready", flush=True)
    stop.wait()
    pool.stop()
    broker.close()


if __name__ == "__main__":
    main(sys.argv[1])
