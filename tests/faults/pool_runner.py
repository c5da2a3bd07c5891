"""A process pool running the fault tasks in a process of its own, until killed.

Run as ``python -m tests.faults.pool_runner URL``; prints ``ready`` once its
workers are up.
"""

from __future__ import annotations

import sys
import threading

from tests.faults import fault_tasks
from worq.pool.process import WorkerPool


def main(url: str) -> None:
    """Serve the fault tasks on ``url`` with two workers until signalled."""
    pool = WorkerPool(fault_tasks.init(url), fault_tasks.init, workers=2)
    done = threading.Event()

    def announce() -> None:
        while not done.wait(0.02):  # no event tells when spawned workers are up
            if len(pool.worker_pids()) == 2:
                print("ready", flush=True)
                return

    threading.Thread(target=announce, daemon=True).start()
    pool.start(timeout=0.1)
    done.set()


if __name__ == "__main__":
    main(sys.argv[1])
