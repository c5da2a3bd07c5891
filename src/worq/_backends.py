"""Choosing a backend from a URL: ``get_broker`` and ``get_queue``."""

from __future__ import annotations

import importlib
from typing import Any, Literal, overload
from urllib.parse import urlsplit

from worq._urls import mask_url
from worq.const import DEFAULT, FAILED_LIMIT, FAILED_TTL
from worq.core import MAX_MESSAGE_SIZE, Broker
from worq.deferred import Deferred
from worq.exceptions import WorqError
from worq.task import Queue
from worq.typing import AsyncTaskQueue, TaskQueue

__all__ = ["get_broker", "get_queue", "make_async_taskqueue", "make_taskqueue"]

_BACKENDS = {
    "memory": "worq.queue.memory",
    "redis": "worq.queue.redis",
    "rediss": "worq.queue.redis",
    "unix": "worq.queue.redis",
    "redis+cluster": "worq.queue.redis",
    "rediss+cluster": "worq.queue.redis",
}


_ASYNC_BACKENDS = {
    "memory": "worq.queue.memory",
    "redis": "worq.queue.redis_async",
    "rediss": "worq.queue.redis_async",
    "unix": "worq.queue.redis_async",
    "redis+cluster": "worq.queue.redis_async",
    "rediss+cluster": "worq.queue.redis_async",
}
"""The modules whose ``AsyncTaskQueue`` serves ``worq.aio`` clients."""


def _backend_module(url: str, name: str, backends: dict[str, str]) -> Any:
    """Import the module of the backend the URL's scheme names.

    Raises:
        ValueError: The URL is malformed or its scheme unknown.
        WorqError: The backend's optional dependencies are not installed.
    """
    if not isinstance(url, str):
        raise ValueError(f"task queue URL must be a string, got {url!r}")
    if not isinstance(name, str):
        raise ValueError(f"queue name must be a non-empty string, got {name!r}")
    if not name:
        raise ValueError(f"queue name must be a non-empty string, got {name!r}")
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:
        raise ValueError(f"malformed task queue URL {mask_url(url)!r}: {exc}") from None
    module_name = backends.get(scheme)
    if module_name is None:
        raise ValueError(
            f"unsupported task queue URL {mask_url(url)!r}: use memory://, redis://, "
            "rediss://, unix://, or redis+cluster:// (rediss+cluster://) for a Redis Cluster"
        )
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise WorqError(
            f"the {scheme}:// backend needs extra packages ({exc.name} is missing): "
            "pip install 'worq[redis]'"
        ) from None


def make_taskqueue(url: str, name: str = DEFAULT, *args: Any, **kw: Any) -> TaskQueue:
    """Build the backend the URL's scheme names.

    Raises:
        ValueError: The URL is malformed or its scheme unknown.
        WorqError: The backend's optional dependencies are not installed.
    """
    taskqueue: TaskQueue = _backend_module(url, name, _BACKENDS).TaskQueue(url, name, *args, **kw)
    return taskqueue


def make_async_taskqueue(url: str, name: str = DEFAULT) -> AsyncTaskQueue:
    """Build the async backend (for ``worq.aio``) the URL's scheme names.

    Raises:
        ValueError, WorqError: As for :func:`make_taskqueue`.
    """
    taskqueue: AsyncTaskQueue = _backend_module(url, name, _ASYNC_BACKENDS).AsyncTaskQueue(
        url, name
    )
    return taskqueue


def get_broker(
    url: str,
    name: str = DEFAULT,
    *args: Any,
    serializer: str = "json",
    max_message_size: int = MAX_MESSAGE_SIZE,
    failed_limit: int = FAILED_LIMIT,
    failed_ttl: float = FAILED_TTL,
    **kw: Any,
) -> Broker:
    """Create a broker for queue ``name`` on the backend at ``url``.

    Args:
        url: ``memory://``, ``redis://host:port/db``, ``rediss://…`` or ``unix:///path.sock``.
        name: The queue on which to expose or invoke tasks.
        *args: Passed to the backend's TaskQueue.
        serializer: ``"json"`` (default) or ``"pickle"`` (trusted deployments only).
        max_message_size: Largest encoded task message accepted, in bytes.
        failed_limit: How many failed tasks the failed-task registry keeps.
        failed_ttl: How long it keeps each, in seconds.
        **kw: Passed to the backend's TaskQueue.
    """
    taskqueue = make_taskqueue(url, name, *args, **kw)
    return Broker(
        taskqueue, serializer=serializer, max_message_size=max_message_size,
        failed_limit=failed_limit, failed_ttl=failed_ttl,
    )  # fmt: skip


@overload
def get_queue(
    url: str,
    name: str = DEFAULT,
    target: str = "",
    *,
    serializer: str = "json",
    max_message_size: int = MAX_MESSAGE_SIZE,
    ignore_result: Literal[True],
    **options: Any,
) -> Queue[None]: ...


@overload
def get_queue(
    url: str,
    name: str = DEFAULT,
    target: str = "",
    *,
    serializer: str = "json",
    max_message_size: int = MAX_MESSAGE_SIZE,
    ignore_result: Literal[False] = False,
    **options: Any,
) -> Queue[Deferred[Any]]: ...


@overload
def get_queue(
    url: str,
    name: str = DEFAULT,
    target: str = "",
    *,
    serializer: str = "json",
    max_message_size: int = MAX_MESSAGE_SIZE,
    ignore_result: bool,
    **options: Any,
) -> Queue[Deferred[Any] | None]: ...


def get_queue(
    url: str,
    name: str = DEFAULT,
    target: str = "",
    *,
    serializer: str = "json",
    max_message_size: int = MAX_MESSAGE_SIZE,
    **options: Any,
) -> Queue[Any]:
    """A Queue for invoking tasks on queue ``name`` at ``url``.

    Args:
        url: Task queue URL.
        name: Queue name; tasks run iff a worker listens on it.
        target: Task namespace or name the Queue starts from; "" is the root.
        serializer: ``"json"`` (default) or ``"pickle"``; must match the workers'.
        max_message_size: Largest encoded task message accepted, in bytes.
        **options: Default task options (see :class:`worq.Task`); with
            ``ignore_result=True`` the queue is fire and forget: its calls
            return None, and it is typed ``Queue[None]``.
    """
    broker = get_broker(url, name, serializer=serializer, max_message_size=max_message_size)
    return broker.queue(target, **options)
