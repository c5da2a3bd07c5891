#!/usr/bin/env python
"""The manual's chapter 1 example, in one process: memory:// and a thread pool.

``num`` tasks are fanned into ``add``: the ten Deferreds are passed to ``add``
as one list argument, so ``add`` runs once all ten have finished.
"""

import structlog

from worq import TaskSpace, get_broker, get_queue
from worq.pool.thread import WorkerPool

ts = TaskSpace("tasks")


@ts.task
def num(value: int) -> int:
    return int(value)


@ts.task
def add(values: list[int]) -> int:
    return sum(values)


def main(url: str = "memory://") -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger("warning"))
    broker = get_broker(url)
    broker.expose(ts)
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.1)
    try:
        q = get_queue(url)
        nums = [q.tasks.num(x) for x in range(10)]
        result = q.tasks.add(nums)
        result.wait(timeout=30)
        print(f"0 + 1 + ... + 9 = {result.value}")
    finally:
        pool.stop(use_sentinel=True)


if __name__ == "__main__":
    main()
