"""mypy checks every backend, pool and codec against its Protocol (``make test`` runs mypy).

Each function below only type-checks if the implementation matches the
contract in :mod:`worq.typing`; a method renamed, dropped or given another
signature on one side breaks ``make test``. The functions are never called.
"""

from __future__ import annotations

from worq._codec import JsonCodec, PickleCodec
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.queue.memory import TaskQueue as MemoryTaskQueue
from worq.queue.redis import TaskQueue as RedisTaskQueue
from worq.typing import Codec, TaskQueue, WorkerPool


def backends(memory: MemoryTaskQueue, redis: RedisTaskQueue) -> list[TaskQueue]:
    """Both backends are TaskQueues."""
    as_memory: TaskQueue = memory
    as_redis: TaskQueue = redis
    return [as_memory, as_redis]


def pools(thread: ThreadPool, process: ProcessPool) -> list[WorkerPool]:
    """Both pools are WorkerPools."""
    as_thread: WorkerPool = thread
    as_process: WorkerPool = process
    return [as_thread, as_process]


def codecs(json: JsonCodec, pickle: PickleCodec) -> list[Codec]:
    """Both serializers are Codecs."""
    as_json: Codec = json
    as_pickle: Codec = pickle
    return [as_json, as_pickle]
