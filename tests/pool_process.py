"""A process pool in a process of its own: the far end of signal and orphan tests.

Run as ``python -m tests.pool_process URL``. Prints ``ready PID PID…`` (the
worker pids) once its workers are up, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import sys
import threading

import structlog

from tests import process_tasks
from worq.pool.process import WorkerPool

WORKERS = 2


def announce(pool: WorkerPool, done: threading.Event) -> None:
    """Print the worker pids once every worker is up."""
    while not done.wait(0.02):  # no event tells when spawned workers are up
        pids = pool.worker_pids()
        if len(pids) == WORKERS:
            print("ready", *pids, flush=True)
            return


def main(url: str) -> None:
    """Serve the proc tasks on ``url`` until signalled."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    pool = WorkerPool(process_tasks.init(url), process_tasks.init, workers=WORKERS)
    done = threading.Event()
    threading.Thread(target=announce, args=(pool, done), daemon=True).start()
    pool.start(timeout=0.2)
    done.set()
    print("stopped", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
