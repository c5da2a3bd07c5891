"""The async client's queue: the sync :class:`~worq.Queue`'s calls, awaited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, TypeVarTuple, cast, overload

from typing_extensions import TypeVar as DefaultTypeVar

from worq.aio._broker import AsyncBroker
from worq.aio._deferred import AsyncDeferred
from worq.task import (
    _argument_tuples,
    _check_task_function,
    _check_task_id,
    _make_options,
    _return_hint,
    _task_ids,
    task_name_of,
)

__all__ = ["AsyncQueue"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")
D = DefaultTypeVar("D", bound="AsyncDeferred[Any] | None", default="AsyncDeferred[Any]")
"""What sending a task returns: an AsyncDeferred, or None when fire and forget."""


class AsyncQueue(Generic[D]):
    """Sends tasks from async code; attribute access walks the task namespace.

    The async twin of :class:`worq.Queue`, on the same backends: a task sent
    here is run by any pool, and its result can be awaited by any async
    client (or waited for by a sync one) on the same queue.

    ``await aq.shop.price("A-1")`` sends task ``shop.price`` and returns an
    ``AsyncDeferred[Any]``; ``await aq.submit(fn, ...)`` returns an
    ``AsyncDeferred[R]`` typed from ``fn`` (for an ``async def fn`` too: ``R``
    is what it returns once awaited). Its own public names (``submit``,
    ``map``, ``starmap``, ``aclose``) shadow task paths of the same name.

    Args:
        broker: The async broker tasks are sent through.
        target: Dotted task (space) path; ``""`` is the root.
        **options: Default task options (see :class:`worq.Task`), ``id``
            and ``ignore_result`` included.
    """

    __slots__ = ("_id", "_options", "_target", "broker")

    def __init__(self, broker: AsyncBroker, target: str = "", **options: Any) -> None:
        self.broker = broker
        self._target = target
        self._id = options.pop("id", None)
        if self._id is not None:
            _check_task_id(self._id, f"queue {broker.name!r}")
        self._options = _make_options(options, f"queue {broker.name!r}")

    def __getattr__(self, name: str) -> AsyncQueue[D]:
        if name.startswith("_"):
            raise AttributeError(name)
        child: AsyncQueue[D] = object.__new__(AsyncQueue)
        child.broker = self.broker
        child._target = f"{self._target}.{name}" if self._target else name
        child._id = self._id
        child._options = self._options
        return child

    async def __call__(self, *args: Any, **kwargs: Any) -> D:
        """Send the task named by this queue's path; return its future result."""
        (sent,) = await self._send(self._target, [(args, kwargs)], None)
        return cast(D, sent)

    @overload
    async def submit(
        self: AsyncQueue[None], fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> None: ...

    @overload
    async def submit(
        self: AsyncQueue[None], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> None: ...

    @overload
    async def submit(
        self: AsyncQueue[AsyncDeferred[Any]],
        fn: Callable[P, Awaitable[R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> AsyncDeferred[R]: ...

    @overload
    async def submit(
        self: AsyncQueue[AsyncDeferred[Any]],
        fn: Callable[P, R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> AsyncDeferred[R]: ...

    async def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> AsyncDeferred[Any] | None:
        """Send task ``fn`` and return its ``AsyncDeferred[R]`` (None when fire and forget).

        mypy checks the arguments against ``fn``'s signature, as for ``Queue.submit``.
        """
        _check_task_function(fn)
        (sent,) = await self._send(task_name_of(fn, self._target), [(args, kwargs)], fn)
        return sent

    @overload
    async def map(
        self: AsyncQueue[None], fn: Callable[[T], Awaitable[R]], items: Iterable[T], /
    ) -> None: ...

    @overload
    async def map(self: AsyncQueue[None], fn: Callable[[T], R], items: Iterable[T], /) -> None: ...

    @overload
    async def map(
        self: AsyncQueue[AsyncDeferred[Any]], fn: Callable[[T], Awaitable[R]], items: Iterable[T], /
    ) -> list[AsyncDeferred[R]]: ...

    @overload
    async def map(
        self: AsyncQueue[AsyncDeferred[Any]], fn: Callable[[T], R], items: Iterable[T], /
    ) -> list[AsyncDeferred[R]]: ...

    async def map(
        self, fn: Callable[[Any], Any], items: Iterable[Any], /
    ) -> list[AsyncDeferred[Any]] | None:
        """Send task ``fn`` once per item in pipelined chunks, as ``Queue.map`` does."""
        _check_task_function(fn, "map")
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [((item,), {}) for item in items]
        return self._batch(await self._send(task_name_of(fn, self._target), calls, fn))

    @overload
    async def starmap(
        self: AsyncQueue[None], fn: Callable[[*Ts], Awaitable[R]], items: Iterable[tuple[*Ts]], /
    ) -> None: ...

    @overload
    async def starmap(
        self: AsyncQueue[None], fn: Callable[[*Ts], R], items: Iterable[tuple[*Ts]], /
    ) -> None: ...

    @overload
    async def starmap(
        self: AsyncQueue[AsyncDeferred[Any]],
        fn: Callable[[*Ts], Awaitable[R]],
        items: Iterable[tuple[*Ts]],
        /,
    ) -> list[AsyncDeferred[R]]: ...

    @overload
    async def starmap(
        self: AsyncQueue[AsyncDeferred[Any]], fn: Callable[[*Ts], R], items: Iterable[tuple[*Ts]], /
    ) -> list[AsyncDeferred[R]]: ...

    async def starmap(
        self, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]], /
    ) -> list[AsyncDeferred[Any]] | None:
        """Send task ``fn`` once per tuple of arguments, as ``Queue.starmap`` does."""
        _check_task_function(fn, "starmap")
        calls = _argument_tuples(items)
        return self._batch(await self._send(task_name_of(fn, self._target), calls, fn))

    async def _send(
        self,
        name: str,
        calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
        fn: Callable[..., Any] | None,
    ) -> list[AsyncDeferred[Any] | None]:
        hint = None if fn is None else _return_hint(fn)
        with_ids = _task_ids(self._id, calls)
        return await self.broker.enqueue_many(name, with_ids, self._options, hint=hint)

    def _batch(self, sent: list[AsyncDeferred[Any] | None]) -> list[AsyncDeferred[Any]] | None:
        return None if self._options.ignore_result else cast(list[AsyncDeferred[Any]], sent)

    async def aclose(self) -> None:
        """Close the queue's connections; ``async with`` a queue does it on the way out."""
        await self.broker.close()

    async def __aenter__(self) -> AsyncQueue[D]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncQueue {self._target} [{self.broker.name}]>"
