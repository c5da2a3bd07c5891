"""worq: a strictly typed Python task queue.

Send tasks with :func:`get_queue`, run them with a broker from
:func:`get_broker` and a worker pool; results come back as typed
:class:`~worq.task.Deferred` objects that can feed other tasks.
"""

from worq._backends import get_broker, get_queue
from worq.core import Broker
from worq.deferred import WaitResult, wait_all
from worq.exceptions import (
    BackendUnavailable,
    DependencyUnavailable,
    DuplicateTask,
    NoValueYet,
    PoolError,
    ResultNotReady,
    SerializationError,
    TaskExpired,
    TaskFailure,
    WorqError,
)
from worq.task import Deferred, Queue, Task, TaskSpace

__all__ = [
    "BackendUnavailable",
    "Broker",
    "Deferred",
    "DependencyUnavailable",
    "DuplicateTask",
    "NoValueYet",
    "PoolError",
    "Queue",
    "ResultNotReady",
    "SerializationError",
    "Task",
    "TaskExpired",
    "TaskFailure",
    "TaskSpace",
    "WaitResult",
    "WorqError",
    "get_broker",
    "get_queue",
    "wait_all",
]
