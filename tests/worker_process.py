"""A thread pool in a process of its own, until SIGTERM: the far end of cross-process tests.

Run as ``python -m tests.worker_process URL``; serves the ``proc`` tasks of
:mod:`tests.process_tasks` and prints ``ready`` once serving.
"""

from __future__ import annotations

import signal
import sys
import threading

import structlog

from tests import process_tasks
from worq.pool.thread import WorkerPool


def main(url: str) -> None:
    """Serve the ``proc`` tasks on ``url`` until SIGTERM."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    broker = process_tasks.init(url)
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.2)
    print("ready", flush=True)
    stop.wait()
    pool.stop()
    broker.close()


if __name__ == "__main__":
    main(sys.argv[1])
