"""The client API: task namespaces, queues, task handles and deferred results."""

from __future__ import annotations

import contextlib
import functools
import typing
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, cast, overload

import attrs

from worq._deferred import Deferred
from worq._models import OnError, TaskOptions
from worq.exceptions import DuplicateTask, TaskExpired, TaskFailure

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
F = TypeVar("F", bound=Callable[..., Any])
D = TypeVar("D", bound="Deferred[Any] | None")

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


class Queue:
    """Invokes remote tasks; attribute access walks the task namespace.

    ``q.shop.price("A-1")`` sends task ``shop.price`` and returns a
    ``Deferred[Any]``; :meth:`submit` does the same for a task function and
    returns a ``Deferred`` typed from the function's return annotation.

    Queue's own public names (``submit``) shadow task paths of the same name;
    everything else, except names starting with ``_``, is a task path.

    Args:
        broker: The broker tasks are sent through.
        target: Dotted task (space) path; ``""`` is the root.
        **options: Default task options (see :class:`Task`), except
            ``ignore_result``, which only :class:`Task` takes, so that calling a
            Queue always returns a Deferred.
    """

    __slots__ = ("_broker", "_id", "_options", "_target")

    def __init__(self, broker: Broker, target: str = "", **options: Any) -> None:
        if options.get("ignore_result"):
            raise ValueError(
                "ignore_result is not a queue default: use Task(q.<task>, ignore_result=True)"
            )
        self._broker = broker
        self._target = target
        self._id: TaskId | None = options.pop("id", None)
        self._options = _make_options(options)

    def __getattr__(self, name: str) -> Queue:
        if name.startswith("_"):
            raise AttributeError(name)
        target = f"{self._target}.{name}" if self._target else name
        return self._child(target)

    def _child(self, target: str) -> Queue:
        child = object.__new__(Queue)
        child._broker = self._broker
        child._target = target
        child._id = self._id
        child._options = self._options
        return child

    def __call__(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Send the task named by this queue's path; return its future result."""
        deferred = self._broker.enqueue(
            self._target, _task_id(self._id, args, kwargs), args, kwargs, self._options
        )
        if deferred is None:  # pragma: no cover - queues never carry ignore_result
            raise AssertionError("a Queue always keeps results")
        return deferred

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Deferred[R]:
        """Send task ``fn`` (as exposed on the worker) and return ``Deferred[R]``.

        mypy checks the arguments against ``fn``'s signature. The task name is
        the full path ``fn`` was registered under with :meth:`TaskSpace.task`,
        else ``fn.__name__`` under this queue's path.
        """
        deferred = self._broker.enqueue(
            task_name_of(fn, self._target),
            _task_id(self._id, args, kwargs),
            args,
            kwargs,
            self._options,
            hint=_return_hint(fn),
        )
        if deferred is None:  # pragma: no cover - queues never carry ignore_result
            raise AssertionError("a Queue always keeps results")
        return deferred

    def __len__(self) -> int:
        """Approximate number of tasks waiting in the queue."""
        return self._broker.taskqueue.size()

    def __delitem__(self, key: slice) -> None:
        """``del q[:]`` discards every task waiting in the queue."""
        if key != slice(None):
            raise TypeError("only `del queue[:]` is supported: it discards all pending tasks")
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
            (default 3600).
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
        ValueError: An option has an invalid value.
    """

    FAIL: OnError = "fail"
    PASS: OnError = "pass"

    __slots__ = ("delay", "eta", "id", "options", "queue")

    @overload
    def __init__(
        self: Task[Deferred[Any]],
        queue: Queue,
        id: TaskId | None = None,
        on_error: OnError | None = None,
        ignore_result: Literal[False] = False,
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
        queue: Queue,
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
        self: Task[Deferred[Any] | None],
        queue: Queue,
        id: TaskId | None = None,
        on_error: OnError | None = None,
        ignore_result: bool = False,
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
        queue: Queue,
        id: TaskId | None = None,
        on_error: OnError | None = None,
        ignore_result: bool = False,
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
        if id is not None and not isinstance(id, str) and not callable(id):
            raise ValueError(f"task id must be a string or a function returning one, got {id!r}")
        self.queue = queue
        self.id = queue._id if id is None else id
        if delay is not None and eta is not None:
            raise ValueError("give a task either a delay or an eta, not both")
        if delay is not None and (type(delay) not in (int, float) or delay < 0):
            raise ValueError(f"delay must be a number of seconds >= 0, got {delay!r}")
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
        self.options = attrs.evolve(
            queue._options, **{key: value for key, value in given.items() if value is not None}
        )

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
        return Task(self.queue, **merged)

    def __call__(self, *args: Any, **kwargs: Any) -> D:
        """Send the task; return its Deferred, or None when ignoring the result."""
        broker = self.queue._broker
        deferred = broker.enqueue(
            self.name,
            _task_id(self.id, args, kwargs),
            args,
            kwargs,
            self.options,
            delay=self._delay(),
            scheduled=self.delay is not None or self.eta is not None,
        )
        return cast(D, deferred)  # D is Deferred exactly when results are kept

    def _delay(self) -> float:
        """Seconds from now until the task may run."""
        if self.eta is not None:
            return max(0.0, (self.eta - datetime.now(UTC)).total_seconds())
        return max(0.0, float(self.delay or 0))

    def __repr__(self) -> str:
        return f"<Task {self.name} [{self.queue._broker.name}] {self.options}>"


_OPTION_NAMES = frozenset(attribute.name for attribute in TaskOptions.__attrs_attrs__)


def _make_options(options: Mapping[str, Any]) -> TaskOptions:
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        expected = sorted(_OPTION_NAMES | {"id"})
        raise ValueError(f"unknown task options {sorted(unknown)}: expected some of {expected}")
    return TaskOptions(**options)


def _task_id(task_id: TaskId | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if task_id is None:
        return uuid.uuid4().hex
    if isinstance(task_id, str):
        return task_id
    computed = task_id(*args, **kwargs)
    if not isinstance(computed, str):
        raise ValueError(
            f"task id function {task_id!r} returned {computed!r}: it must return a str"
        )
    return computed


@functools.lru_cache(maxsize=1024)
def _return_hint(fn: Callable[..., Any]) -> Any:
    """``fn``'s return annotation; None when absent, ``Any``, ``None`` or unresolvable."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable forward references: fall back to untyped results
        return None
    return None if hint in (Any, type(None)) else hint
