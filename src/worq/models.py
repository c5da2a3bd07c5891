"""The value objects that travel between clients, brokers, pools and workers.

Every type here appears in a public signature (``Broker.next_task`` returns a
:class:`TaskMessage`, ``Task.options`` is a :class:`TaskOptions`,
``Broker.execute`` returns an :class:`Outcome`), so this module is public.

A task travels as two parts (see :mod:`worq._wire`): the :class:`Envelope`,
small and always JSON, which every component reads (brokers, pools, the
reaper, a client settling a lapsed task), and the :class:`Payload`, the
arguments, decoded once, by the process that runs the task. A
:class:`TaskMessage` is both together: an envelope with its payload.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import attrs
import orjson

from worq._checks import check_seconds

__all__ = [
    "DEFAULT_OPTIONS",
    "ON_ERROR_VALUES",
    "RUNNING_SHOWN",
    "ArgumentRef",
    "Envelope",
    "FailedTask",
    "OnError",
    "Outcome",
    "Payload",
    "PoolRecord",
    "SentTask",
    "TaskInfo",
    "TaskMessage",
    "TaskOptions",
]

OnError = Literal["fail", "pass"]
ON_ERROR_VALUES: tuple[OnError, ...] = ("fail", "pass")


def _positive_number(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_seconds(attribute.name, value)


def _non_negative_number(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_seconds(attribute.name, value, zero=True)


def _optional_positive_number(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        _positive_number(instance, attribute, value)


def _retries(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"retries must be an int >= 0, got {value!r}")


def _on_error(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ON_ERROR_VALUES:
        raise ValueError(
            f"on_error must be Task.FAIL ('fail') or Task.PASS ('pass'), got {value!r}"
        )


def _boolean(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be True or False, got {value!r}")


@attrs.frozen(kw_only=True)
class TaskOptions:
    """How a task is run and how long its result lives.

    Attributes:
        on_error: ``"fail"`` fails the task when a task it takes as an argument
            failed; ``"pass"`` passes the :class:`~worq.TaskFailure` in as the
            argument's value.
        ignore_result: Fire and forget: no result is stored, nothing to wait on.
        result_timeout: Seconds a finished task's result is kept for its waiter.
        heartrate: Seconds between the heartbeats a worker sends while the task
            runs; its lease lapses after a few missed beats.
        retries: How many times to run the task again after it raised, its
            worker died, or its lease lapsed; 0 (default) runs it at most once.
        retry_backoff: Seconds before the first retry; each further retry
            waits twice as long, with jitter, up to ``retry_backoff_max``.
        retry_backoff_max: Longest wait before a retry.
        time_limit: Seconds a run may take; past it the process pool kills the
            worker and the thread pool fails the task (its thread runs on).
    """

    on_error: OnError = attrs.field(default="fail", validator=_on_error)
    ignore_result: bool = attrs.field(default=False, validator=_boolean)
    result_timeout: float = attrs.field(default=3600, validator=_positive_number)
    heartrate: float = attrs.field(default=30, validator=_positive_number)
    retries: int = attrs.field(default=0, validator=_retries)
    retry_backoff: float = attrs.field(default=1, validator=_non_negative_number)
    retry_backoff_max: float = attrs.field(default=300, validator=_non_negative_number)
    time_limit: float | None = attrs.field(default=None, validator=_optional_positive_number)

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before running again after run number ``attempt`` (1-based) failed.

        Exponential (``retry_backoff * 2 ** (attempt - 1)``), capped at
        ``retry_backoff_max``, with "equal jitter" (between half and all of it)
        so that tasks failing together do not all retry at the same instant.
        """
        ceiling = min(self.retry_backoff_max, self.retry_backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@attrs.frozen
class ArgumentRef:
    """Stands in a message for the result of another task.

    A :class:`~worq.task.Deferred` passed as an argument is replaced by one of
    these at enqueue time; the worker swaps it for the result before the call.
    """

    task_id: str


DEFAULT_OPTIONS = TaskOptions()
"""Every option at its default: one shared instance, which queues without
options and decoded envelopes without ``"options"`` use, so that the hot path
tells the common case by identity instead of comparing each option."""


@attrs.frozen(kw_only=True)
class Envelope:
    """What every part of worq but the task itself needs to know of a task.

    Small and always JSON on the wire, whatever the serializer: a pool, a
    reaper or a client settling a lapsed task reads it without decoding the
    arguments, so an argument it cannot decode (a class it does not have)
    changes nothing for them.

    Attributes:
        id: Unique task id; also the key of its result.
        name: Dotted task name, e.g. ``"shop.price"``.
        queue: Name of the queue the task was sent to.
        options: How to run the task.
        refs: Ids of the referenced tasks whose results the backend hands over.
        attempt: Worker side only, not encoded: which run this is (1 = first).
        lease: Worker side only, not encoded: the token that lets this run
            heartbeat, retry or finish the task; "" for a fire-and-forget task
            that is not tracked.
        trace: The W3C ``traceparent`` of the span that sent the task (see
            :mod:`worq._tracing`); "" when the sender traced nothing.
        due_ms: When the task was due to run (ms since the epoch, the
            sender's clock): when it was sent, plus its delay; a scheduled
            task's scheduled time. None for a task sent by a worq that did not
            record it. Queue waits are measured from it.
    """

    id: str
    name: str
    queue: str
    options: TaskOptions = attrs.field(factory=TaskOptions)
    refs: tuple[str, ...] = ()
    attempt: int = 1
    lease: str = ""
    trace: str = ""
    due_ms: int | None = None

    @property
    def tracked(self) -> bool:
        """Whether the backend keeps the task until a worker finishes it.

        A task is tracked when someone can observe its outcome (its result,
        its dependants' arguments) or when it may run again (retries): then it
        is held under a lease and re-run or expired if its worker vanishes.
        A fire-and-forget task without retries is forgotten once taken.
        """
        return not self.options.ignore_result or self.options.retries > 0 or bool(self.refs)


@attrs.frozen(kw_only=True)
class Payload:
    """A task's arguments, as its codec carries them.

    Attributes:
        args: Positional arguments; may contain :class:`ArgumentRef`.
        kwargs: Keyword arguments; may contain :class:`ArgumentRef`.
        resolved: Outcomes of referenced tasks that the client already held
            (completed Deferreds passed as arguments), keyed by task id.
    """

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    resolved: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TaskMessage(Envelope):
    """One task invocation, envelope and payload: what a worker runs.

    ``Broker.next_task`` returns one. Its envelope attributes (``id``,
    ``name``, ``queue``, ``options``, ``refs``, ``attempt``, ``lease``) are
    :class:`Envelope`'s; ``args``, ``kwargs`` and ``resolved`` are
    :class:`Payload`'s.
    """

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    resolved: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def join(cls, envelope: Envelope, payload: Payload) -> TaskMessage:
        """The task of ``envelope`` with the arguments of ``payload``."""
        return cls(
            id=envelope.id,
            name=envelope.name,
            queue=envelope.queue,
            options=envelope.options,
            refs=envelope.refs,
            attempt=envelope.attempt,
            lease=envelope.lease,
            trace=envelope.trace,
            due_ms=envelope.due_ms,
            args=payload.args,
            kwargs=payload.kwargs,
            resolved=payload.resolved,
        )

    @property
    def envelope(self) -> Envelope:
        """The envelope alone (what a pool hands to a worker process with the payload)."""
        return Envelope(
            id=self.id,
            name=self.name,
            queue=self.queue,
            options=self.options,
            refs=self.refs,
            attempt=self.attempt,
            lease=self.lease,
            trace=self.trace,
            due_ms=self.due_ms,
        )

    @property
    def payload(self) -> Payload:
        """The arguments alone."""
        return Payload(args=self.args, kwargs=self.kwargs, resolved=self.resolved)


@attrs.frozen
class Outcome:
    """What running a task produced (see ``Broker.execute``).

    Attributes:
        value: The return value, or a TaskFailure saying why there is none.
        retry_reason: Why running it again may succeed (the task raised); None
            when it may not (it succeeded, is unknown, got wrong arguments, or a
            dependency failed).
        aborted: The ``BaseException`` that is not an ``Exception``
            (``SystemExit``, ``KeyboardInterrupt``...) the task raised, if any:
            the task failed like any other, and the pool decides what the
            exception means for the worker.
    """

    value: Any
    retry_reason: str | None = None
    aborted: BaseException | None = None


@attrs.frozen(kw_only=True)
class SentTask:
    """A task as its client sent it: what :attr:`worq.task.Deferred.task` holds.

    Attributes:
        id: The task's id.
        name: Its dotted name.
        args: The positional arguments as the caller passed them (a Deferred
            argument is still that Deferred); None when not known here, for a
            Deferred rebuilt from an id: the arguments then live only in the
            backend.
        kwargs: The keyword arguments, likewise; None when not known here.
        options: The options it was sent with; None when not known here.
    """

    id: str
    name: str
    args: tuple[Any, ...] | None = None
    kwargs: dict[str, Any] | None = None
    options: TaskOptions | None = None


@attrs.frozen(kw_only=True)
class FailedTask:
    """A task of the failed-task registry: it ended failed or expired, no retry left.

    Attributes:
        id: The task's id.
        name: Its dotted name ("?" when its message cannot be read).
        queue: The queue it was sent to.
        status: ``"failed"`` (it raised, or could not run) or ``"expired"``
            (it ran out of time: its worker died, its lease lapsed).
        error: What went wrong, as its waiter reads it.
        attempts: How many runs it had (0: it never started).
        failed_at: When it was filed (seconds since the epoch).
        due_at: When it was due to run (seconds since the epoch: sent, or its
            delay over); None when unknown.
        message: Its message as sent: a JSON envelope, a newline, then its
            arguments as the queue's serializer wrote them.
        dependants: Ids of the pending tasks its failure was handed to.
    """

    id: str
    name: str
    queue: str
    status: str
    error: str
    attempts: int
    failed_at: float
    due_at: float | None
    message: bytes
    dependants: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class TaskInfo:
    """All that is known of one task, for a look at it (``Broker.inspect``).

    A task's message (its name, arguments and the Deferred arguments it waits
    on) is held until it finishes, then kept with its outcome (its arguments
    only up to 4 KiB) until the outcome is taken; a failed task's registry
    entry keeps it too. A task whose outcome was taken has left nothing.

    Attributes:
        id: The task's id.
        queue: Its queue.
        name: Its dotted name; "" once finished, unless it is in the registry.
        status: ``pending``, ``delayed``, ``enqueued``, ``processing``,
            ``completed`` (its outcome waits to be taken), or ``failed`` /
            ``expired`` (in the failed-task registry).
        attempts: Runs so far.
        due_at: When it was due (seconds since the epoch); None when unknown.
        started_at: When its latest run began; None before the first, or
            unknown (its outcome taken, or stored from outside a run).
        finished_at: When it finished, while its outcome waits; None otherwise.
        worker: Who took it for that run (``host:pid``); "" when unknown.
        failed_at: When it was filed as failed or expired; None otherwise.
        error: The failure's error, when filed.
        message: Its message as sent (JSON envelope, newline, arguments as
            the queue's serializer wrote them); None when not kept.
        outcome: Its stored outcome as the serializer wrote it, until taken.
        refs: The tasks whose results it takes as arguments (known while its
            message is).
        dependants: The pending tasks waiting for its result; for a failed task,
            those its failure was handed to.
    """

    id: str
    queue: str
    name: str
    status: str
    attempts: int
    due_at: float | None
    started_at: float | None
    finished_at: float | None
    worker: str
    failed_at: float | None
    error: str | None
    message: bytes | None
    outcome: bytes | None
    refs: tuple[str, ...]
    dependants: tuple[str, ...]


@attrs.frozen(kw_only=True)
class PoolRecord:
    """What a live pool tells the backend about itself, with each heartbeat.

    Attributes:
        id: Unique per pool start (``host:pid:random``).
        host: The machine's host name.
        pid: The pool's process id (a process pool's supervising process).
        kind: ``"thread"``, ``"process"`` or ``"asyncio"``.
        name: The pool's name (``worq-<queue>`` by default).
        queue: The queue it serves.
        workers: Its worker threads or processes (the asyncio pool: its concurrency).
        started: When it started (seconds since the epoch).
        tasks_done: Runs it finished since it started.
        running: The ids of the tasks it runs now (at most :data:`RUNNING_SHOWN`).
        updated: When this record was written (seconds since the epoch).
    """

    id: str
    host: str
    pid: int
    kind: str
    name: str
    queue: str
    workers: int
    started: float
    tasks_done: int
    running: tuple[str, ...]
    updated: float

    def encode(self) -> bytes:
        """The record as the backend stores it (JSON)."""
        return orjson.dumps(attrs.asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> PoolRecord:
        """A stored record.

        Raises:
            ValueError: It is not one (another program wrote the key, say).
        """
        try:
            fields = orjson.loads(data)
            return cls(**{**fields, "running": tuple(fields["running"])})
        except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
            raise ValueError(f"not a worq pool record: {data[:80]!r} ({exc})") from None


RUNNING_SHOWN = 100
"""Most running task ids a pool record lists (a pool of more workers says how many
in ``running`` only up to this many)."""
