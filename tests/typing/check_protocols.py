"""mypy checks every backend, pool and codec against its Protocol (``make test`` runs mypy).

Each function below only type-checks if the implementation matches the
contract in :mod:`worq.typing`; a method renamed, dropped or given another
signature on one side breaks ``make test``. The functions are never called.
"""

from __future__ import annotations

from worq._codec import JsonCodec, PickleCodec
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.queue.memory import AsyncTaskQueue as MemoryAsyncTaskQueue
from worq.queue.memory import TaskQueue as MemoryTaskQueue
from worq.queue.redis import TaskQueue as RedisTaskQueue
from worq.queue.redis_async import AsyncTaskQueue as RedisAsyncTaskQueue
from worq.typing import AsyncTaskQueue, Codec, TaskQueue, WorkerPool


def backends(memory: MemoryTaskQueue, redis: RedisTaskQueue) -> list[TaskQueue]:
    """Both backends are TaskQueues."""
    as_memory: TaskQueue = memory
    as_redis: TaskQueue = redis
    return [as_memory, as_redis]


def async_backends(
    memory: MemoryAsyncTaskQueue, redis: RedisAsyncTaskQueue
) -> list[AsyncTaskQueue]:
    """Both async backends are AsyncTaskQueues."""
    as_memory: AsyncTaskQueue = memory
    as_redis: AsyncTaskQueue = redis
    return [as_memory, as_redis]


def pools(thread: ThreadPool, process: ProcessPool, asyncio: AsyncioPool) -> list[WorkerPool]:
    """Every pool is a WorkerPool."""
    as_thread: WorkerPool = thread
    as_process: WorkerPool = process
    as_asyncio: WorkerPool = asyncio
    return [as_thread, as_process, as_asyncio]


def codecs(json: JsonCodec, pickle: PickleCodec) -> list[Codec]:
    """Both serializers are Codecs."""
    as_json: Codec = json
    as_pickle: Codec = pickle
    return [as_json, as_pickle]
