"""asyncio client: send tasks and await their results from async code.

``aq = worq.aio.get_queue(url)`` is the async twin of :func:`worq.get_queue`,
on the same backends and URLs (Redis through ``redis.asyncio``, memory://
too) and interoperating with sync clients and every pool::

    d = await aq.submit(price, "A-1")   # AsyncDeferred[Decimal]
    value = await d                     # or: await d.wait(5); d.value

See ``docs/asyncio.md``.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from worq._backends import make_async_taskqueue
from worq.aio._broker import AsyncBroker
from worq.aio._deferred import AsyncDeferred
from worq.aio._queue import AsyncQueue
from worq.const import DEFAULT
from worq.core import MAX_MESSAGE_SIZE

__all__ = ["AsyncBroker", "AsyncDeferred", "AsyncQueue", "get_queue"]


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
) -> AsyncQueue[None]: ...


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
) -> AsyncQueue[AsyncDeferred[Any]]: ...


def get_queue(
    url: str,
    name: str = DEFAULT,
    target: str = "",
    *,
    serializer: str = "json",
    max_message_size: int = MAX_MESSAGE_SIZE,
    **options: Any,
) -> AsyncQueue[Any]:
    """An async queue for sending tasks to queue ``name`` at ``url``.

    Making it does no I/O and needs no running loop; its connections are
    made on first use, on the loop that uses it (a queue used again under a
    new loop, after ``asyncio.run`` ended the first, makes new ones).

    Args:
        url, name, target, serializer, max_message_size, **options: As for
            :func:`worq.get_queue`.
    """
    broker = AsyncBroker(
        make_async_taskqueue(url, name), serializer=serializer, max_message_size=max_message_size
    )
    return AsyncQueue(broker, target, **options)
