"""The client API: task namespaces, queues, task handles and deferred results."""

from __future__ import annotations

import contextlib
import functools
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    ParamSpec,
    TypeVar,
    TypeVarTuple,
    cast,
    overload,
)

import attrs
from typing_extensions import TypeVar as DefaultTypeVar

from worq._checks import check_seconds, check_task_id, is_coroutine_function
from worq._ids import new_task_id
from worq.deferred import Deferred
from worq.exceptions import DuplicateTask, TaskExpired, TaskFailure
from worq.models import DEFAULT_OPTIONS, OnError, TaskOptions

if TYPE_CHECKING:
    from worq.core import Broker

__all__ = [
    "Deferred",
    "DuplicateTask",
    "Queue",
    "Task",
    "TaskExpired",
    "TaskFailure",
    "TaskSpace",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")
F = TypeVar("F", bound=Callable[..., Any])
D = DefaultTypeVar("D", bound="Deferred[Any] | None", default="Deferred[Any]")
"""What calling a Queue or Task returns: a Deferred, or None when fire and forget."""

TaskId = str | Callable[..., str]
"""A task id, or a function computing one from the task's arguments."""

_NAME_ATTRIBUTE = "__worq_task_name__"


def task_name_of(fn: Callable[..., Any], namespace: str = "") -> str:
    """The name ``fn`` is exposed under.

    Its full TaskSpace path when it was registered with :meth:`TaskSpace.task`;
    otherwise its ``__name__`` within ``namespace`` (how ``Broker.expose(fn)``
    and a Queue with a target name it).
    """
    registered = getattr(getattr(fn, "__func__", fn), _NAME_ATTRIBUTE, None)
    if isinstance(registered, str):
        return registered
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"{fn!r} has no __name__: register it with TaskSpace.task(fn, name=...)")
    return f"{namespace}.{name}" if namespace else name


class TaskSpace:
    """A namespace of tasks, like a Python module of functions.

    ``TaskSpace("shop")`` holds tasks invoked as ``q.shop.<task>``; expose it
    on a worker's broker with :meth:`worq.core.Broker.expose`.

    Args:
        name: Dotted namespace; ``""`` is the root namespace.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.tasks: dict[str, Callable[..., Any]] = {}

    @overload
    def task(self, callable: F, name: str | None = None) -> F: ...

    @overload
    def task(self, *, name: str) -> Callable[[F], F]: ...

    def task(self, callable: F | None = None, name: str | None = None) -> F | Callable[[F], F]:
        """Add a task; usable as ``@ts.task`` or ``@ts.task(name="alias")``.

        The function is returned unchanged, so type checkers see its real
        signature (which :meth:`Queue.submit` checks calls against).

        Args:
            callable: A function or bound method.
            name: Task name within this space; defaults to ``callable.__name__``.
        """
        if callable is None:
            alias = name

            def decorate(fn: F) -> F:
                return self.task(fn, alias)

            return decorate
        short = name or getattr(callable, "__name__", None)
        if not short:
            raise ValueError(f"cannot name task {callable!r}: pass name=...")
        full = f"{self.name}.{short}" if self.name else short
        self.tasks[full] = callable
        target = getattr(callable, "__func__", callable)
        # builtins cannot carry the name; submit() falls back to their __name__
        with contextlib.suppress(AttributeError, TypeError):
            setattr(target, _NAME_ATTRIBUTE, full)
        return callable

    def __repr__(self) -> str:
        return f"<TaskSpace {self.name!r} tasks={sorted(self.tasks)}>"


class Queue(Generic[D]):
    """Invokes remote tasks; attribute access walks the task namespace.

    ``q.shop.price("A-1")`` sends task ``shop.price`` and returns a
    ``Deferred[Any]``; :meth:`submit` does the same for a task function and
    returns a ``Deferred`` typed from the function's return annotation.

    ``Queue`` is generic in what a call returns: ``Queue[Deferred[Any]]`` (the
    default, what a bare ``Queue`` annotation means) for an ordinary queue,
    ``Queue[None]`` for a fire-and-forget queue made with
    ``ignore_result=True``, whose calls return None.

    Queue's own public names (``submit``, ``map``, ``starmap``) shadow task
    paths of the same name; everything else, except names starting with
    ``_``, is a task path. Reach a task so named through its full path:
    ``Queue(broker, "shop.map")`` or ``broker.queue("map")``.

    Args:
        broker: The broker tasks are sent through.
        target: Dotted task (space) path; ``""`` is the root.
        **options: Default task options (see :class:`Task`), ``ignore_result``
            included.

    Raises:
        ValueError: An option is unknown or has an invalid value, or
            ``ignore_result=True`` is combined with ``result_timeout``.
    """

    __slots__ = ("_broker", "_defaults", "_id", "_options", "_target")

    @overload
    def __init__(
        self: Queue[None],
        broker: Broker,
        target: str = "",
        *,
        ignore_result: Literal[True],
        **options: Any,
    ) -> None: ...

    @overload
    def __init__(
        self: Queue[Deferred[Any]],
        broker: Broker,
        target: str = "",
        *,
        ignore_result: Literal[False] = False,
        **options: Any,
    ) -> None: ...

    @overload
    def __init__(
        self: Queue[Deferred[Any] | None],
        broker: Broker,
        target: str = "",
        *,
        ignore_result: bool,
        **options: Any,
    ) -> None: ...

    def __init__(self, broker: Broker, target: str = "", **options: Any) -> None:
        self._broker = broker
        self._target = target
        self._id: TaskId | None = options.pop("id", None)
        if self._id is not None:
            _check_task_id(self._id, f"queue {broker.name!r}")
        self._defaults: dict[str, Any] = options
        self._options = _make_options(options, f"queue {broker.name!r}")

    def __getattr__(self, name: str) -> Queue[D]:
        if name.startswith("_"):
            raise AttributeError(name)
        target = f"{self._target}.{name}" if self._target else name
        return self._child(target)

    def _child(self, target: str) -> Queue[D]:
        child: Queue[D] = object.__new__(Queue)
        child._broker = self._broker
        child._target = target
        child._id = self._id
        child._defaults = self._defaults
        child._options = self._options
        return child

    def __call__(self, *args: Any, **kwargs: Any) -> D:
        """Send the task named by this queue's path; return its future result.

        Returns:
            A ``Deferred[Any]``, or None when the queue ignores results.
        """
        deferred = self._broker.enqueue(
            self._target, _task_id(self._id, args, kwargs), args, kwargs, self._options
        )
        return cast(D, deferred)  # D is None exactly when the queue ignores results

    @overload
    def submit(
        self: Queue[None], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> None: ...

    @overload
    def submit(
        self: Queue[Deferred[Any]], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Deferred[R]: ...

    @overload
    def submit(
        self: Queue[Deferred[Any] | None], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Deferred[R] | None: ...

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Deferred[Any] | None:
        """Send task ``fn`` (as exposed on the worker) and return ``Deferred[R]``.

        mypy checks the arguments against ``fn``'s signature. The task name is
        the full path ``fn`` was registered under with :meth:`TaskSpace.task`,
        else ``fn.__name__`` under this queue's path. On a fire-and-forget
        queue (``ignore_result=True``) the task is sent all the same and
        ``submit`` returns None, which mypy knows from the queue's type.

        Raises:
            TypeError: ``fn`` is not callable, e.g. the task was called here,
                ``submit(price(x))``, instead of passed, ``submit(price, x)``.
        """
        _check_task_function(fn)
        return self._broker.enqueue(
            task_name_of(fn, self._target),
            _task_id(self._id, args, kwargs),
            args,
            kwargs,
            self._options,
            hint=_return_hint(fn),
        )

    @overload
    def map(self: Queue[None], fn: Callable[[T], R], items: Iterable[T], /) -> None: ...

    @overload
    def map(
        self: Queue[Deferred[Any]], fn: Callable[[T], R], items: Iterable[T], /
    ) -> list[Deferred[R]]: ...

    @overload
    def map(
        self: Queue[Deferred[Any] | None], fn: Callable[[T], R], items: Iterable[T], /
    ) -> list[Deferred[R]] | None: ...

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], /) -> list[Deferred[Any]] | None:
        """Send task ``fn`` once per item, ``fn(item)``, in few round trips.

        Like ``[q.submit(fn, item) for item in items]``, mypy checking each
        item against ``fn``'s one parameter, but every task is encoded first
        and the batch goes in pipelined chunks (1,000 tasks per round trip on
        Redis). On a fire-and-forget queue the tasks are sent and ``map``
        returns None.

        Returns:
            The Deferreds, in the order of ``items``.

        Raises:
            TypeError: ``fn`` is not callable.
            SerializationError: Item ``k`` cannot be encoded; the message names
                ``k``, the task and the queue, and nothing of the batch was sent.
            DuplicateTask, DependencyUnavailable: Some items were refused (a
                taken id, a Deferred argument with no result left); every other
                item was sent, and the error's ``deferreds`` holds their Deferreds.
        """
        _check_task_function(fn, "map")
        return self._send_many(fn, [((item,), {}) for item in items])

    @overload
    def starmap(
        self: Queue[None], fn: Callable[[*Ts], R], items: Iterable[tuple[*Ts]], /
    ) -> None: ...

    @overload
    def starmap(
        self: Queue[Deferred[Any]], fn: Callable[[*Ts], R], items: Iterable[tuple[*Ts]], /
    ) -> list[Deferred[R]]: ...

    @overload
    def starmap(
        self: Queue[Deferred[Any] | None],
        fn: Callable[[*Ts], R],
        items: Iterable[tuple[*Ts]],
        /,
    ) -> list[Deferred[R]] | None: ...

    def starmap(
        self, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]], /
    ) -> list[Deferred[Any]] | None:
        """Send task ``fn`` once per tuple of arguments, ``fn(*item)``, in few round trips.

        :meth:`map` for tasks of several parameters: mypy checks each tuple
        against ``fn``'s positional parameters.

        Raises:
            TypeError: ``fn`` is not callable, or an item is not a tuple.
            SerializationError, DuplicateTask, DependencyUnavailable: As for :meth:`map`.
        """
        _check_task_function(fn, "starmap")
        return self._send_many(fn, _argument_tuples(items))

    def _send_many(
        self, fn: Callable[..., Any], calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]]
    ) -> list[Deferred[Any]] | None:
        deferreds = self._broker.enqueue_many(
            task_name_of(fn, self._target),
            _task_ids(self._id, calls),
            self._options,
            hint=_return_hint(fn),
        )
        return None if self._options.ignore_result else cast(list[Deferred[Any]], deferreds)

    def __len__(self) -> int:
        """Approximate number of tasks not yet started: runnable, delayed or
        waiting for their Deferred arguments."""
        return self._broker.size()

    def __delitem__(self, key: slice) -> None:
        """``del q[:]`` discards every task not yet started (see :meth:`__len__`)."""
        if key != slice(None):  # any other slice, or a key that is not a slice
            raise ValueError("delitem is only valid with a full slice ([:])")
        self._broker.discard_pending_tasks()

    def __eq__(self, other: object) -> bool:
        """Queues are equal when they use the same broker, whatever their paths."""
        if not isinstance(other, Queue):
            return NotImplemented
        return self._broker == other._broker

    def __hash__(self) -> int:
        return hash(self._broker)

    def __repr__(self) -> str:
        return f"<Queue {self._target} [{self._broker.name}]>"


class Task(Generic[D]):
    """A task with options; call it to send the task.

    ``Task(q.func, ignore_result=True)(3)`` sends ``func(3)`` fire-and-forget
    and returns None; without ``ignore_result`` a call returns a Deferred.

    Args:
        queue: The Queue whose path names the task, e.g. ``q.shop.price``.
        id: Task id, or a function returning one from the task's arguments.
            Only one task with a given id may exist at a time; the default is
            a fresh random id per call.
        on_error: ``Task.FAIL`` (default) fails the task when a Deferred
            argument failed; ``Task.PASS`` passes the TaskFailure in instead.
        ignore_result: Fire and forget: store no result, return None.
        result_timeout: Seconds the result is kept after the task completes
            (default 3600). A fire-and-forget task keeps no result, so giving
            both (here or as queue defaults) is refused.
        heartrate: Seconds between worker heartbeats while the task runs
            (default 30).
        retries: Runs to add after the task raised, its worker died, its lease
            lapsed, or it passed its time limit in the process pool (default 0:
            at most one run).
        retry_backoff: Seconds before the first retry, doubling each time,
            with jitter (default 1).
        retry_backoff_max: Longest wait before a retry (default 300).
        time_limit: Seconds a run may take (default: no limit).
        delay: Seconds to wait before the task becomes runnable.
        eta: When the task becomes runnable (a timezone-aware datetime).

    Options left out (None) take the queue's defaults (see :class:`Queue`),
    then worq's.

    Raises:
        ValueError: An option has an invalid value, or ``ignore_result=True``
            meets a ``result_timeout``.
    """

    FAIL: OnError = "fail"
    PASS: OnError = "pass"

    __slots__ = ("delay", "eta", "id", "options", "queue")

    @overload
    def __init__(
        self,
        queue: Queue[D],
        id: TaskId | None = None,
        on_error: OnError | None = None,
        ignore_result: None = None,
        result_timeout: float | None = None,
        heartrate: float | None = None,
        retries: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        time_limit: float | None = None,
        delay: float | None = None,
        eta: datetime | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Task[None],
        queue: Queue[Any],
        id: TaskId | None = None,
        on_error: OnError | None = None,
        *,
        ignore_result: Literal[True],
        result_timeout: float | None = None,
        heartrate: float | None = None,
        retries: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        time_limit: float | None = None,
        delay: float | None = None,
        eta: datetime | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Task[Deferred[Any]],
        queue: Queue[Any],
        id: TaskId | None = None,
        on_error: OnError | None = None,
        *,
        ignore_result: Literal[False],
        result_timeout: float | None = None,
        heartrate: float | None = None,
        retries: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        time_limit: float | None = None,
        delay: float | None = None,
        eta: datetime | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Task[Deferred[Any] | None],
        queue: Queue[Any],
        id: TaskId | None = None,
        on_error: OnError | None = None,
        *,
        ignore_result: bool,
        result_timeout: float | None = None,
        heartrate: float | None = None,
        retries: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        time_limit: float | None = None,
        delay: float | None = None,
        eta: datetime | None = None,
    ) -> None: ...

    def __init__(
        self,
        queue: Queue[Any],
        id: TaskId | None = None,
        on_error: OnError | None = None,
        ignore_result: bool | None = None,
        result_timeout: float | None = None,
        heartrate: float | None = None,
        retries: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        time_limit: float | None = None,
        delay: float | None = None,
        eta: datetime | None = None,
    ) -> None:
        if not isinstance(queue, Queue):
            raise ValueError(
                f"Task needs a Queue naming the task, e.g. Task(q.func); got {queue!r}"
            )
        where = f"task {queue._target!r} on queue {queue._broker.name!r}"
        if id is not None:
            _check_task_id(id, where)
        self.queue = queue
        self.id = queue._id if id is None else id
        if delay is not None and eta is not None:
            raise ValueError("give a task either a delay or an eta, not both")
        if delay is not None:
            check_seconds(f"{where}: delay", delay, zero=True)
        if eta is not None and not isinstance(eta, datetime):
            raise ValueError(f"eta must be a datetime, got {eta!r}")
        if eta is not None and eta.tzinfo is None:
            raise ValueError(f"eta must be timezone-aware (e.g. datetime.now(UTC)), got {eta!r}")
        self.delay = delay
        self.eta = eta
        given: dict[str, Any] = {
            "on_error": on_error,
            "ignore_result": ignore_result,
            "result_timeout": result_timeout,
            "heartrate": heartrate,
            "retries": retries,
            "retry_backoff": retry_backoff,
            "retry_backoff_max": retry_backoff_max,
            "time_limit": time_limit,
        }
        merged = {**queue._defaults, **{k: v for k, v in given.items() if v is not None}}
        self.options = _make_options(merged, where)

    @property
    def name(self) -> str:
        """The dotted task name."""
        return self.queue._target

    def with_options(self, options: Mapping[str, Any]) -> Task[Deferred[Any] | None]:
        """A copy of this task with ``options`` (the constructor's keywords) changed."""
        merged: dict[str, Any] = {
            "id": self.id,
            "delay": self.delay,
            "eta": self.eta,
            **attrs.asdict(self.options),
        }
        unknown = set(options) - set(merged)
        if unknown:
            raise ValueError(
                f"unknown task options {sorted(unknown)}: expected some of {sorted(merged)}"
            )
        merged.update(options)
        if merged["ignore_result"] and "result_timeout" not in options:
            merged["result_timeout"] = None  # the kept default means nothing here
        return Task(self.queue, **merged)

    def __call__(self, *args: Any, **kwargs: Any) -> D:
        """Send the task; return its Deferred, or None when ignoring the result."""
        return cast(D, self._send(self.name, args, kwargs))  # D: Deferred iff results are kept

    @overload
    def submit(
        self: Task[None], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> None: ...

    @overload
    def submit(
        self: Task[Deferred[Any]], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Deferred[R]: ...

    @overload
    def submit(
        self: Task[Deferred[Any] | None], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Deferred[R] | None: ...

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Deferred[Any] | None:
        """Send task ``fn`` with this Task's options: the typed way to set options for one call.

        ``Task(q, retries=3, id="nightly").submit(report, day)`` is
        ``q.submit(report, day)`` with those options: mypy checks the arguments
        against ``report`` and types the result ``Deferred[R]`` (None when
        results are ignored). The task is named as :meth:`Queue.submit` names
        it, under the path of the Queue this Task was made from.

        Raises:
            TypeError: ``fn`` is not callable (see :meth:`Queue.submit`).
        """
        _check_task_function(fn)
        return self._send(task_name_of(fn, self.queue._target), args, kwargs, _return_hint(fn))

    @overload
    def map(self: Task[None], items: Iterable[Any], /) -> None: ...

    @overload
    def map(self: Task[Deferred[Any]], items: Iterable[Any], /) -> list[Deferred[Any]]: ...

    @overload
    def map(
        self: Task[Deferred[Any] | None], items: Iterable[Any], /
    ) -> list[Deferred[Any]] | None: ...

    def map(self, items: Iterable[Any], /) -> list[Deferred[Any]] | None:
        """Send this task once per item, with this Task's options: ``Queue.map``'s untyped path.

        ``Task(q.shop.price, retries=2).map(skus)`` sends ``shop.price(sku)``
        for each sku, each with ``retries=2`` (a ``delay`` or ``eta`` applies
        to every task). See :meth:`Queue.map` for the batching and errors.
        """
        return self._send_many([((item,), {}) for item in items])

    @overload
    def starmap(self: Task[None], items: Iterable[tuple[Any, ...]], /) -> None: ...

    @overload
    def starmap(
        self: Task[Deferred[Any]], items: Iterable[tuple[Any, ...]], /
    ) -> list[Deferred[Any]]: ...

    @overload
    def starmap(
        self: Task[Deferred[Any] | None], items: Iterable[tuple[Any, ...]], /
    ) -> list[Deferred[Any]] | None: ...

    def starmap(self, items: Iterable[tuple[Any, ...]], /) -> list[Deferred[Any]] | None:
        """Send this task once per tuple of arguments, with this Task's options (see map)."""
        return self._send_many(_argument_tuples(items))

    def _send_many(
        self, calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]]
    ) -> list[Deferred[Any]] | None:
        deferreds = self.queue._broker.enqueue_many(
            self.name,
            _task_ids(self.id, calls),
            self.options,
            delay=self._delay(),
            scheduled=self.delay is not None or self.eta is not None,
        )
        return None if self.options.ignore_result else cast(list[Deferred[Any]], deferreds)

    def _send(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], hint: Any = None
    ) -> Deferred[Any] | None:
        return self.queue._broker.enqueue(
            name,
            _task_id(self.id, args, kwargs),
            args,
            kwargs,
            self.options,
            hint=hint,
            delay=self._delay(),
            scheduled=self.delay is not None or self.eta is not None,
        )

    def _delay(self) -> float:
        """Seconds from now until the task may run."""
        if self.eta is not None:
            return max(0.0, (self.eta - datetime.now(UTC)).total_seconds())
        return max(0.0, float(self.delay or 0))

    def __repr__(self) -> str:
        return f"<Task {self.name} [{self.queue._broker.name}] {self.options}>"


_OPTION_NAMES = frozenset(attribute.name for attribute in TaskOptions.__attrs_attrs__)


def _make_options(options: Mapping[str, Any], where: str) -> TaskOptions:
    """Validated options from explicitly given ones; ``where`` names the queue/task."""
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        expected = sorted(_OPTION_NAMES | {"id"})
        raise ValueError(
            f"{where}: unknown task options {sorted(unknown)}: expected some of {expected}"
        )
    if options.get("ignore_result") is True and options.get("result_timeout") is not None:
        raise ValueError(
            f"{where}: ignore_result=True keeps no result, so "
            f"result_timeout={options['result_timeout']!r} cannot apply: drop one of them "
            "(a queue default counts as given)"
        )
    given = {name: value for name, value in options.items() if value is not None}
    if not given:
        return DEFAULT_OPTIONS
    try:
        return TaskOptions(**given)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _check_task_function(fn: object, method: str = "submit") -> None:
    """Refuse a value where a task function belongs: the usual ``submit(price(x))`` slip."""
    if not callable(fn):
        raise TypeError(
            f"{method} expects a task function, got a {type(fn).__qualname__} instance: pass "
            "the function and its arguments, submit(price, x), not its result, "
            "submit(price(x))"
        )


def _check_task_id(task_id: object, where: str) -> None:
    """A fixed id must be usable (see check_task_id); a function is checked per call."""
    if not callable(task_id):
        check_task_id(task_id, where)
    elif is_coroutine_function(task_id):
        raise ValueError(
            f"{where}: task id function {task_id!r} is an async def function: ids are made "
            "as the task is sent, without awaiting; make it a plain function returning a str"
        )


def _task_id(task_id: TaskId | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if task_id is None:
        return new_task_id()
    if isinstance(task_id, str):
        return task_id
    computed = task_id(*args, **kwargs)
    if not isinstance(computed, str):
        raise ValueError(
            f"task id function {task_id!r} returned {computed!r}: it must return a str"
        )
    return computed


def _task_ids(
    task_id: TaskId | None, calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]]
) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Each call of a batch with its task id; an id function's error names the item."""
    with_ids = []
    for index, (args, kwargs) in enumerate(calls):
        try:
            with_ids.append((_task_id(task_id, args, kwargs), args, kwargs))
        except ValueError as exc:
            raise ValueError(f"item {index} of the batch: {exc}") from None
    return with_ids


def _argument_tuples(
    items: Iterable[tuple[Any, ...]],
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The calls of a starmap: each item must be the tuple of one task's arguments."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, tuple):
            raise TypeError(
                f"starmap expects a tuple of arguments per item, got a "
                f"{type(item).__qualname__} at item {index}: use map for one-argument tasks"
            )
        calls.append((item, {}))
    return calls


@functools.lru_cache(maxsize=1024)
def _return_hint(fn: Callable[..., Any]) -> Any:
    """``fn``'s return annotation; None when absent, ``Any``, ``None`` or unresolvable."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable forward references: fall back to untyped results
        return None
    return None if hint in (Any, type(None)) else hint
