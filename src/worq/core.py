"""The Broker: the one object that talks to a queue backend.

It owns the serializer and the registry of exposed tasks. Clients enqueue
through it (via :class:`~worq.task.Queue`), workers take, run and finish tasks
through it, and :class:`~worq.task.Deferred` fetches results through it.
"""

from __future__ import annotations

import datetime as dt
import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVarTuple, Unpack, overload

import attrs

from worq._checks import check_seconds, check_task_id
from worq._codec import make_codec
from worq._deadline import Deadline
from worq._events import logger
from worq._extract import ExtractedArguments, extract_refs
from worq._ids import id_time_ms
from worq._tracing import current_traceparent, sending
from worq._urls import mask_url
from worq._wire import decode_envelope, encode_task
from worq.const import EXPIRED, FAILED, FAILED_LIMIT, FAILED_TTL, TaskStatus
from worq.deferred import Deferred, ResultHandle
from worq.exceptions import (
    DependencyUnavailable,
    DuplicateTask,
    ResultNotReady,
    SerializationError,
    TaskExpired,
    TaskFailure,
)
from worq.models import (
    DEFAULT_OPTIONS,
    Envelope,
    FailedTask,
    Outcome,
    PoolRecord,
    SentTask,
    TaskInfo,
    TaskMessage,
    TaskOptions,
)
from worq.runner import NOOP_TASK, EncodedOutcome, ExposedTask, Runner
from worq.schedules import CatchUp, Overlap, Schedule, ScheduleError, ScheduleOptions
from worq.stats import KEEP_MINUTES, MinuteStats
from worq.task import Queue, TaskSpace, task_name_of
from worq.typing import (
    Codec,
    DeferResult,
    FailureNote,
    FiledFailure,
    FireResult,
    NewTask,
    RetryResult,
    ScheduleState,
    Taken,
    TaskLike,
    TaskQueue,
)

__all__ = ["NOOP_TASK", "Broker", "TaskQueue"]


HEARTBEAT_GRACE = 3
"""A running task's result placeholder outlives this many missed heartbeats."""

WORKER_LOST = "the worker running it was lost"

Ts = TypeVarTuple("Ts")

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""Default largest encoded task message, in bytes."""

DEFAULT_RESULT_TIMEOUT = 3600
"""Seconds to keep an outcome stored for a task whose options are not known here
(its message could not be decoded, or it was expired from outside)."""


def _check_arguments(
    where: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    """Refuse arguments ``fn`` cannot be called with.

    Raises:
        ScheduleError: Naming ``where`` and what does not fit.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without introspectable signatures
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise ScheduleError(
            f"{where}: its arguments do not fit the task{signature}: {exc}"
        ) from None


def _some(indexes: list[int], shown: int = 10) -> str:
    """The first few of ``indexes``, for an error message."""
    text = ", ".join(map(str, indexes[:shown]))
    return f"{text}, ..." if len(indexes) > shown else text or "none"


class Broker:
    """Connects client code and workers to one named queue on one backend.

    Args:
        taskqueue: The backend (see :class:`worq.typing.TaskQueue`).
        serializer: ``"json"`` (default) or ``"pickle"``. Pickle runs code
            chosen by whoever can write to the backend: use it only when every
            such writer is trusted.
        max_message_size: Largest encoded task message accepted, in bytes
            (16 MiB by default); a larger one is refused when sent.
        failed_limit: How many failed tasks the queue's failed-task registry
            keeps (the latest), as filed through this broker.
        failed_ttl: How long it keeps each, in seconds (7 days by default).
    """

    def __init__(
        self,
        taskqueue: TaskQueue,
        *,
        serializer: str = "json",
        max_message_size: int = MAX_MESSAGE_SIZE,
        failed_limit: int = FAILED_LIMIT,
        failed_ttl: float = FAILED_TTL,
    ) -> None:
        if type(max_message_size) is not int or max_message_size < 1:
            raise ValueError(
                f"max_message_size must be a positive number of bytes, got {max_message_size!r}"
            )
        if type(failed_limit) is not int or failed_limit < 1:
            raise ValueError(
                f"failed_limit must be a positive number of tasks, got {failed_limit!r}"
            )
        check_seconds("failed_ttl", failed_ttl)
        self.failed_limit = failed_limit
        self.failed_ttl = failed_ttl
        self.taskqueue = taskqueue
        self.runner = Runner(make_codec(serializer))
        """Runs this broker's exposed tasks; a process pool's workers use only this."""
        self.max_message_size = max_message_size
        self._schedules: dict[str, Schedule] = {}

    @property
    def codec(self) -> Codec:
        """The serializer of arguments and results (see :mod:`worq._codec`)."""
        return self.runner.codec

    @property
    def tasks(self) -> dict[str, ExposedTask]:
        """The exposed tasks by dotted name (see :meth:`expose`)."""
        return self.runner.tasks

    @property
    def name(self) -> str:
        """The queue name."""
        return self.taskqueue.name

    @property
    def url(self) -> str:
        """The backend URL, password included: mask it before showing it."""
        return self.taskqueue.url

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Broker):
            return NotImplemented
        return (type(self.taskqueue), self.url, self.name) == (
            type(other.taskqueue),
            other.url,
            other.name,
        )

    def __hash__(self) -> int:
        return hash((type(self.taskqueue), self.url, self.name))

    def __repr__(self) -> str:
        return f"<Broker {mask_url(self.url)} [{self.name}] {self.codec.name}>"

    # -- worker setup -------------------------------------------------------

    def expose(self, obj: TaskSpace | Callable[..., Any], replace: bool = False) -> None:
        """Make a TaskSpace's tasks, or one callable, runnable by this broker's workers.

        A callable is exposed under its ``__name__`` in the root namespace.

        Raises:
            ValueError: A task of that name is already exposed and not ``replace``.
        """
        if isinstance(obj, TaskSpace):
            items: Iterable[tuple[str, Callable[..., Any]]] = obj.tasks.items()
        else:
            name = getattr(obj, "__name__", None)
            if not isinstance(name, str):
                raise ValueError(f"cannot expose {obj!r}: it has no __name__ (use a TaskSpace)")
            items = [(name, obj)]
        for name, fn in items:
            if not replace and name in self.tasks:
                raise ValueError(
                    f"task {name!r} is already exposed on queue {self.name!r}: "
                    "pass replace=True to replace it"
                )
            self.runner.expose(name, fn)

    # -- periodic tasks -------------------------------------------------------

    @overload
    def schedule(
        self,
        task: Callable[[*Ts], Any],
        /,
        *,
        args: tuple[*Ts],
        kwargs: None = None,
        **when: Unpack[ScheduleOptions],
    ) -> Schedule: ...

    @overload
    def schedule(
        self,
        task: Callable[[], Any],
        /,
        *,
        args: tuple[()] = (),
        kwargs: None = None,
        **when: Unpack[ScheduleOptions],
    ) -> Schedule: ...

    @overload
    def schedule(
        self,
        task: Callable[..., Any],
        /,
        *,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any],
        **when: Unpack[ScheduleOptions],
    ) -> Schedule: ...

    @overload
    def schedule(
        self,
        task: str,
        /,
        *,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        **when: Unpack[ScheduleOptions],
    ) -> Schedule: ...

    def schedule(
        self, task: Callable[..., Any] | str, /, *, args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None, cron: str | None = None,
        every: dt.timedelta | float | None = None, tz: str = "UTC", name: str | None = None,
        catch_up: CatchUp = "latest", overlap: Overlap = "skip",
        options: TaskOptions | None = None,
    ) -> Schedule:  # fmt: skip
        """Send ``task`` on a schedule: every pool of this broker fires it, once per time.

        mypy checks ``args`` against the task's parameters (with ``kwargs``,
        they are checked when the schedule is declared). The schedule goes to
        this broker's queue; see :mod:`worq.schedules` and docs/periodic.md.

        Args:
            task: The task function (as exposed on the workers), or its dotted name.
            args: Positional arguments of every task sent.
            kwargs: Keyword arguments of every task sent.
            cron: A cron expression read in ``tz`` (croniter's syntax: 5
                fields, a 6th for seconds); give it or ``every``.
            every: An interval (a timedelta, or seconds), aligned to the Unix
                epoch so that every pool fires at the same times.
            tz: The IANA time zone of ``cron``; daylight saving time as croniter
                defines it (a skipped time fires when the clock jumps past it,
                a repeated one fires once per instant).
            name: Unique among this broker's schedules, part of each fire's
                task id (``schedule:<name>:<UTC time>``); default: the task's name.
            catch_up: What to send for times missed while no pool ran.
            overlap: What to do while the previous fire's task waits or runs.
            options: The options of each task sent (default: the defaults, so
                each fire's result is kept for an hour under its task id). With
                ``ignore_result`` and no retries a task is forgotten once taken,
                so ``overlap="skip"`` sees only a previous fire still waiting.

        Raises:
            ScheduleError: A bad cron expression, time zone, interval or policy,
                both or neither of ``cron`` and ``every``, a name another schedule
                of this broker has, or arguments that do not fit the task or
                cannot be encoded; the message names the schedule.
        """
        if isinstance(task, str):
            task_name, fn = task, None
        elif callable(task):
            task_name, fn = task_name_of(task), task
        else:
            raise ScheduleError(
                f"schedule {name!r}: expected a task function or name, got {task!r}"
            )
        exposed = self.tasks.get(task_name)
        if fn is None and exposed is not None:
            fn = exposed.fn
        if isinstance(every, int | float) and not isinstance(every, bool):
            every = dt.timedelta(seconds=every)
        if every is not None and not isinstance(every, dt.timedelta):
            raise ScheduleError(
                f"schedule {name or task_name!r}: every must be a timedelta or a number of "
                f"seconds, got {every!r}"
            )
        schedule = Schedule(
            name=task_name if name is None else name, task=task_name, args=tuple(args),
            kwargs=dict(kwargs or {}), cron=cron, every=every, tz=tz, catch_up=catch_up,
            overlap=overlap, options=DEFAULT_OPTIONS if options is None else options,
        )  # fmt: skip
        where = f"schedule {schedule.name!r} (task {task_name!r})"
        if schedule.name in self._schedules:
            raise ScheduleError(f"{where}: this broker has a schedule of that name already")
        if fn is not None:
            _check_arguments(where, fn, schedule.args, schedule.kwargs)
        try:
            self._encode(
                task_name, "check", schedule.args, dict(schedule.kwargs),
                schedule.options, 0, False, "",
            )  # fmt: skip
        except (SerializationError, ValueError) as exc:
            raise ScheduleError(f"{where}: its arguments cannot be sent: {exc}") from None
        self._schedules[schedule.name] = schedule
        return schedule

    @property
    def schedules(self) -> Mapping[str, Schedule]:
        """This broker's schedules by name (see :meth:`schedule`)."""
        return dict(self._schedules)

    def register_schedules(self, now_ms: int) -> None:
        """Store this broker's schedules in the backend, for its pools and listings: each
        one's definition, and a state for a new one (its latest time before ``now_ms``
        passed over, so that it fires from now on); a known one keeps its state."""
        self.taskqueue.register_schedules(
            [
                (s.name, ScheduleState(s.definition(), s.latest(now_ms), s.next_after(now_ms)))
                for s in self._schedules.values()
            ]
        )

    def schedule_states(
        self, alive_until_ms: int | None = None
    ) -> tuple[dict[str, ScheduleState], int]:
        """The states of every schedule registered on this queue, and until when a pool's
        scheduler was last said to run (see ``TaskQueue.schedule_states``)."""
        return self.taskqueue.schedule_states(alive_until_ms)

    # -- failed-task registry ----------------------------------------------------

    def failed_tasks(self, limit: int = 100) -> list[FailedTask]:
        """The queue's failed-task registry, the latest failure first, at most ``limit``."""
        if type(limit) is not int or limit < 1:
            raise ValueError(f"limit must be a positive number of tasks, got {limit!r}")
        return [self._failed_task(filed) for filed in self.taskqueue.failed_tasks(limit)]

    def _failed_task(self, filed: FiledFailure) -> FailedTask:
        envelope = self._readable_envelope(filed.task_id, filed.message)
        name = "?" if envelope is None else envelope.name
        due_ms = None if envelope is None else envelope.due_ms
        return FailedTask(
            id=filed.task_id, name=name, queue=self.name, status=filed.status,
            error=filed.error, attempts=filed.attempt, failed_at=filed.failed_ms / 1000,
            due_at=None if due_ms is None else due_ms / 1000, message=filed.message,
            dependants=filed.dependants,
        )  # fmt: skip

    def retry_failed(self, task_ids: Sequence[str] | None = None) -> dict[str, RetryResult]:
        """Send failed tasks of the registry again (``None``: all), in one atomic step.

        Each goes as a new attempt of the same id, in the order they failed;
        its waiter gets the new outcome; the pending tasks its failure was
        handed to wait for the new one; and the registry's tasks that failed
        because it did are retried along (see ``TaskQueue.retry_failed``).

        Returns:
            What happened to each id (retried, unknown, busy, missing_argument),
            the dependants retried along included, in the order handled.
        """
        done = dict(self.taskqueue.retry_failed(None if task_ids is None else list(task_ids)))
        retried = [i for i, result in done.items() if result is RetryResult.RETRIED]
        refused = {
            i: str(result) for i, result in done.items() if result is not RetryResult.RETRIED
        }
        logger.info("failed.retried", queue=self.name, retried=retried, refused=refused)
        return done

    def discard_failed(self, task_ids: Sequence[str] | None = None) -> list[str]:
        """Drop tasks from the failed-task registry (``None``: all); the ids dropped."""
        dropped = self.taskqueue.discard_failed(None if task_ids is None else list(task_ids))
        logger.info("failed.discarded", queue=self.name, count=len(dropped))
        return dropped

    def inspect(self, task_id: str) -> TaskInfo | None:
        """All that is known of a task now (see :class:`~worq.models.TaskInfo`); None
        when the backend holds nothing of it (unknown, or finished and taken)."""
        record = self.taskqueue.inspect(task_id)
        if record is None:
            return None
        filed = record.filed
        finished = record.status == "completed"
        message = record.message or (filed.message if filed is not None else b"")
        envelope = self._readable_envelope(task_id, message)
        unnamed = "?" if message else ""  # its message unreadable, or finished and gone
        name = unnamed if envelope is None else envelope.name
        return TaskInfo(
            id=task_id,
            queue=self.name,
            name=name,
            status=filed.status if finished and filed is not None else record.status,
            attempts=filed.attempt if finished and filed is not None else record.attempt,
            due_at=None if envelope is None or envelope.due_ms is None else envelope.due_ms / 1000,
            started_at=None if record.started_ms is None else record.started_ms / 1000,
            finished_at=None if record.finished_ms is None else record.finished_ms / 1000,
            worker=record.worker,
            failed_at=None if filed is None else filed.failed_ms / 1000,
            error=None if filed is None else filed.error,
            message=message or None,
            outcome=record.outcome,
            refs=() if envelope is None else envelope.refs,
            dependants=record.dependants or (() if filed is None else filed.dependants),
        )

    def _readable_envelope(self, task_id: str, message: bytes) -> Envelope | None:
        """The envelope of a stored message; None for none, or one that cannot be read."""
        if not message:
            return None
        try:
            return decode_envelope(message, task_id, self.name)[0]
        except SerializationError:
            return None

    def next_in_line(self) -> Envelope | None:
        """The envelope of the runnable task a worker would take next (its ``due_ms``
        tells how long it has waited); None when none waits or it cannot be read."""
        found = self.taskqueue.next_in_line()
        return None if found is None else self._readable_envelope(found[0], found[1] + b"\n")

    # -- per-minute stats ------------------------------------------------------

    def add_stats(self, counts: Mapping[tuple[int, str], int]) -> None:
        """Add a pool's per-minute counts to the queue's (see :mod:`worq.stats`)."""
        self.taskqueue.add_stats(counts, KEEP_MINUTES)

    def stats(self, minutes: int = KEEP_MINUTES) -> list[MinuteStats]:
        """The queue's runs of the last ``minutes`` minutes (this one included), one
        entry per minute, oldest first; minutes without runs have empty counts."""
        if type(minutes) is not int or not 1 <= minutes <= KEEP_MINUTES:
            raise ValueError(f"minutes must be from 1 to {KEEP_MINUTES}, got {minutes!r}")
        last = int(time.time() // 60)
        found = self.taskqueue.stats(last - minutes + 1, last)
        return [
            MinuteStats.from_fields(minute, found.get(minute, {}))
            for minute in range(last - minutes + 1, last + 1)
        ]

    # -- live pools ------------------------------------------------------------

    def announce_pool(self, record: PoolRecord, ttl: float) -> None:
        """Tell the backend this pool is alive, for ``ttl`` seconds (0: it stopped)."""
        self.taskqueue.announce_pool(record.id, record.encode(), ttl)

    def live_pools(self) -> list[PoolRecord]:
        """The pools serving this queue now, by start time; a record that does not
        decode (not worq's) is logged as ``pool.record_unreadable`` and left out."""
        found = []
        for pool_id, data in self.taskqueue.live_pools().items():
            try:
                found.append(PoolRecord.decode(data))
            except ValueError as exc:
                logger.warning("pool.record_unreadable", queue=self.name, pool_id=pool_id,
                               error=str(exc))  # fmt: skip
        return sorted(found, key=lambda record: (record.started, record.id))

    def fire_schedule(
        self, schedule: Schedule, fire_ms: int, *, send: bool = True, check_overlap: bool = True
    ) -> tuple[FireResult, str]:
        """Fire ``schedule`` for the time ``fire_ms``, if no pool did: its task sent, or
        (``send`` false) the time passed over. Returns what happened and the task id.

        Args:
            check_overlap: Apply the schedule's ``overlap="skip"``; false for
                the later ones of times caught up with together.
        """
        task_id = schedule.task_id(fire_ms)
        task = None
        if send:
            message, _, data = self._encode(
                schedule.task, task_id, schedule.args, dict(schedule.kwargs),
                schedule.options, 0, False, "", fire_ms,
            )  # fmt: skip
            task = NewTask(task_id, data, not schedule.options.ignore_result, message.tracked)
        result = self.taskqueue.fire_schedule(
            schedule.name, fire_ms, schedule.next_after(fire_ms), task,
            skip_running=check_overlap and schedule.overlap == "skip",
        )  # fmt: skip
        return result, task_id

    # -- client side ----------------------------------------------------------

    @overload
    def queue(
        self, target: str = "", *, ignore_result: Literal[True], **options: Any
    ) -> Queue[None]: ...

    @overload
    def queue(
        self, target: str = "", *, ignore_result: Literal[False] = False, **options: Any
    ) -> Queue[Deferred[Any]]: ...

    @overload
    def queue(
        self, target: str = "", *, ignore_result: bool, **options: Any
    ) -> Queue[Deferred[Any] | None]: ...

    def queue(self, target: str = "", **options: Any) -> Queue[Any]:
        """A Queue on this broker for the task (space) path ``target``.

        ``options`` are the queue's default task options; with
        ``ignore_result=True`` it is a fire-and-forget ``Queue[None]``.
        """
        queue: Queue[Any] = Queue(self, target, **options)
        return queue

    def enqueue(
        self,
        name: str,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        hint: Any = None,
        delay: float = 0,
        scheduled: bool = False,
    ) -> Deferred[Any] | None:
        """Send one task; return its Deferred, or None when it ignores its result.

        Args:
            delay: Seconds before the task becomes runnable.
            scheduled: A delay or eta was asked for (even if already due).

        Raises:
            SerializationError: An argument cannot be encoded, or the message
                exceeds ``max_message_size``; nothing was stored.
            DuplicateTask: A task with ``task_id`` exists; nothing was stored.
            DependencyUnavailable: A Deferred argument has no result left to take.
            ValueError: ``delay`` combined with Deferred arguments.
        """
        with sending(name, self.name):
            message, extracted, data = self._encode(
                name, task_id, args, kwargs, options, delay, scheduled, ""
            )
            keep_result = not options.ignore_result
            if extracted.refs:
                outcome = self.taskqueue.defer_task(
                    task_id, data, extracted.refs, keep_result=keep_result
                )
                if outcome is DeferResult.MISSING_ARGUMENT:
                    raise self._missing_dependency(name, task_id, extracted.refs)
                stored = outcome is DeferResult.STORED
            else:
                stored = self.taskqueue.enqueue_task(
                    task_id, data, keep_result=keep_result, track=message.tracked, delay=delay
                )
            if not stored:
                raise DuplicateTask(
                    name, self.name, task_id, "cannot enqueue task with duplicate id"
                )
            return self._sent(message, extracted, args, kwargs, hint, delay)

    def _encode(
        self,
        name: str,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        delay: float,
        scheduled: bool,
        item: str,
        due_ms: int | None = None,
    ) -> tuple[TaskMessage, ExtractedArguments, bytes]:
        """A task's message, its extracted Deferred arguments and its encoding.

        Args:
            item: ``" (item 3 of the batch)"`` for a task of a batch, else "".
            due_ms: When the task is due (a schedule's time); by default when
                it is sent (the time its id carries, else now) plus ``delay``.
        """
        check_task_id(task_id, f"task {name!r}{item} on queue {self.name!r}")
        if due_ms is None:
            sent_ms = id_time_ms(task_id)
            if sent_ms is None:
                sent_ms = time.time_ns() // 1_000_000
            due_ms = sent_ms + round(delay * 1000)
        extracted = extract_refs(args, kwargs)
        message = TaskMessage(
            id=task_id,
            name=name,
            queue=self.name,
            args=extracted.args,
            kwargs=extracted.kwargs,
            options=options,
            refs=extracted.refs,
            resolved=extracted.resolved,
            trace=current_traceparent(),
            due_ms=due_ms,
        )
        try:
            data = encode_task(self.codec, message)
        except SerializationError as exc:
            raise SerializationError(
                f"cannot send task {name!r}{item} to queue {self.name!r}: {exc}"
            ) from None
        if len(data) > self.max_message_size:
            raise SerializationError(
                f"cannot send task {name!r}{item} to queue {self.name!r}: its message is "
                f"{len(data)} bytes, over max_message_size={self.max_message_size}; pass "
                "large data by reference (a path, a URL, a key) or raise max_message_size"
            )
        if extracted.refs and (scheduled or delay > 0):
            raise ValueError(
                f"task {name!r}{item}: a delay or eta cannot be combined with Deferred "
                "arguments (the task already waits for them)"
            )
        return message, extracted, data

    def _sent(
        self,
        message: TaskMessage,
        extracted: ExtractedArguments,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        hint: Any,
        delay: float,
    ) -> Deferred[Any] | None:
        """Log a stored task; its Deferred, or None when it ignores its result."""
        self._log_sent(message, extracted, delay)
        if message.options.ignore_result:
            return None
        return Deferred(self, self._sent_task(message, args, kwargs), hint=hint)

    @staticmethod
    def _log_sent(message: TaskMessage, extracted: ExtractedArguments, delay: float) -> None:
        logger.debug(
            "task.deferred" if extracted.refs else "task.enqueued",
            message,
            refs=list(extracted.refs),
            delay_s=delay,
        )

    @staticmethod
    def _sent_task(message: TaskMessage, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SentTask:
        """What a handle on the task holds: its arguments as the caller passed them."""
        return SentTask(
            id=message.id, name=message.name, args=args, kwargs=kwargs, options=message.options
        )

    def enqueue_many(
        self,
        name: str,
        calls: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]],
        options: TaskOptions,
        hint: Any = None,
        delay: float = 0,
        scheduled: bool = False,
    ) -> list[Deferred[Any] | None]:
        """Send many tasks of one name with few round trips (see ``TaskQueue.enqueue_tasks``).

        Every task is encoded before anything is sent, so an argument that
        cannot be encoded stops the whole batch unsent. Each task is then
        stored whole or not at all, as :meth:`enqueue` stores it; the batch as
        a whole is not atomic.

        Args:
            calls: ``(task id, args, kwargs)`` of each task, in order.
            delay, scheduled: As for :meth:`enqueue`, for every task.

        Returns:
            Each task's Deferred, in order (None for tasks ignoring results).

        Raises:
            SerializationError: Item ``k`` cannot be encoded (the message names
                ``k``, the task and the queue); nothing of the batch was sent.
            ValueError: A bad task id, or a delay combined with Deferred
                arguments, in item ``k``; nothing was sent.
            DuplicateTask: Some ids were taken (by existing tasks or earlier
                items of the batch): those items were not stored, every other
                one was. The error names the first such item; its
                ``deferreds`` attribute holds the batch's Deferreds, None for
                each item not stored.
            DependencyUnavailable: A Deferred argument of some items had no
                result left to take; as for DuplicateTask, the others were
                stored and ``deferreds`` holds them.
        """
        with sending(name, self.name, len(calls)):
            prepared = [
                self._encode(name, task_id, args, kwargs, options, delay, scheduled,
                             f" (item {index} of the batch)")
                for index, (task_id, args, kwargs) in enumerate(calls)
            ]  # fmt: skip
            keep_result = not options.ignore_result
            outcomes = self.taskqueue.enqueue_tasks(
                [
                    NewTask(message.id, data, keep_result, message.tracked, delay, extracted.refs)
                    for message, extracted, data in prepared
                ]
            )
        deferreds: list[Deferred[Any] | None] = []
        refused: list[tuple[int, DeferResult]] = []
        for index, ((message, extracted, _), (_, args, kwargs), outcome) in enumerate(
            zip(prepared, calls, outcomes, strict=True)
        ):
            if outcome is DeferResult.STORED:
                deferreds.append(self._sent(message, extracted, args, kwargs, hint, delay))
            else:
                deferreds.append(None)
                refused.append((index, outcome))
        if refused:
            raise self._batch_refused(name, prepared, refused, deferreds)
        return deferreds

    def _batch_refused(
        self,
        name: str,
        prepared: list[tuple[TaskMessage, ExtractedArguments, bytes]],
        refused: list[tuple[int, DeferResult]],
        deferreds: Sequence[ResultHandle[Any] | None],
    ) -> DuplicateTask | DependencyUnavailable:
        """The error for a batch some of whose tasks the backend refused."""
        duplicates = [index for index, outcome in refused if outcome is DeferResult.DUPLICATE]
        missing = [index for index, outcome in refused if outcome is not DeferResult.DUPLICATE]
        stored = len(prepared) - len(refused)
        summary = (
            f"{len(duplicates)} of {len(prepared)} items had a duplicate id (items "
            f"{_some(duplicates)}), {len(missing)} a Deferred argument with no result left "
            f"(items {_some(missing)}); the other {stored} tasks were sent: the error's "
            "deferreds attribute holds them, None where an item was not stored"
        )
        error: DuplicateTask | DependencyUnavailable
        if duplicates:
            first = prepared[duplicates[0]][0]
            error = DuplicateTask(
                name,
                self.name,
                first.id,
                f"cannot enqueue task with duplicate id (item {duplicates[0]} of the batch): "
                + summary,
            )
        else:
            first = prepared[missing[0]][0]
            error = self._missing_dependency(
                name, first.id, first.refs, f" (item {missing[0]} of the batch)", summary
            )
        error.deferreds = list(deferreds)
        return error

    def _missing_dependency(
        self, name: str, task_id: str, refs: tuple[str, ...], item: str = "", more: str = ""
    ) -> DependencyUnavailable:
        missing = [ref for ref in refs if self.taskqueue.get_status(ref) is None]
        return DependencyUnavailable(
            f"cannot send task {name!r}{item} ({task_id}) to queue {self.name!r}: the result of "
            f"task(s) {missing or list(refs)} is gone (fetched, expired or never kept); "
            "pass the value instead, or a Deferred whose result is still stored"
            + (f"; {more}" if more else "")
        )

    def pop_result(self, task: TaskLike, timeout: float | None = 0) -> Any:
        """Take a task's outcome: its value, or the TaskFailure it ended with.

        Args:
            task: Anything with the task's ``id`` and ``name``.
            timeout: Seconds to wait; 0 (default) does not wait; None waits forever.

        Raises:
            ResultNotReady: (a ``KeyError``) No result within ``timeout``.
            TaskExpired: The result vanished: its worker was lost or it timed out.
        """
        deadline = Deadline(timeout)
        while True:
            data = self.taskqueue.pop_result(task.id, deadline.remaining())
            if data is not TaskStatus.LAPSED:
                break
            self.settle_lapsed(task.id)
        if data is None:
            raise ResultNotReady(f"{task.name} [{self.name}:{task.id}] has no result yet")
        outcome = self._outcome(task, data)
        if isinstance(data, TaskStatus):
            raise outcome
        return outcome

    def pop_results(self, tasks: Sequence[TaskLike], timeout: float | None = 0) -> dict[str, Any]:
        """Take the outcomes of many tasks with few round trips (see ``TaskQueue.pop_results``).

        Waits until every task has its outcome or ``timeout`` passed (0, the
        default, does not wait; None waits forever). Tasks whose lease lapsed
        are settled on the way, as :meth:`pop_result` settles them.

        Returns:
            By task id, the outcome of each task that has one: its value, or
            the TaskFailure it ended with (a TaskExpired when its result
            vanished); the tasks still without one are left out.
        """
        by_id = {task.id: task for task in tasks}
        outcomes: dict[str, Any] = {}
        deadline = Deadline(timeout)
        while True:
            missing = [task_id for task_id in by_id if task_id not in outcomes]
            found = self.taskqueue.pop_results(missing, deadline.remaining()) if missing else {}
            lapsed = [task_id for task_id, data in found.items() if data is TaskStatus.LAPSED]
            for task_id, data in found.items():
                if data is not TaskStatus.LAPSED:
                    outcomes[task_id] = self._outcome(by_id[task_id], data)
            if not lapsed:
                return outcomes
            for task_id in lapsed:
                self.settle_lapsed(task_id)

    def settle_lapsed(self, task_id: str) -> None:
        """Retry or expire a task whose lease lapsed, unless someone did already.

        A waiter that finds its task's lease lapsed settles it itself (as a
        reaper would), so that even with no pool left it gets an outcome.
        """
        taken = self.taskqueue.reclaim_task(task_id)
        if taken is not None:
            self._settle(taken)

    def _outcome(self, task: TaskLike, data: bytes | TaskStatus) -> Any:
        """A task's decoded outcome; a TaskExpired when the backend has none for it."""
        if isinstance(data, TaskStatus):
            return TaskExpired(
                task.name,
                self.name,
                task.id,
                "no result: the task is unknown, its worker was lost, its result "
                "timed out, or another client already took it",
            )
        try:
            return self.codec.decode_value(data)
        except SerializationError as exc:
            logger.error(
                "result.undecodable",
                task_id=task.id,
                task_name=task.name,
                queue=self.name,
                error=str(exc),
            )
            return TaskFailure(task.name, self.name, task.id, f"result could not be decoded: {exc}")

    def status(self, result: TaskLike) -> TaskStatus | None:
        """What the backend knows of the task behind ``result``."""
        return self.taskqueue.get_status(result.id)

    def structure(self, value: Any, hint: Any, *, task_name: str, task_id: str) -> Any:
        """Convert a decoded result to the task's return annotation.

        Returns:
            The converted value, or a TaskFailure saying why it did not fit.
        """
        try:
            return self.codec.structure(value, hint)
        except Exception as exc:
            return TaskFailure(
                task_name, self.name, task_id, f"result does not fit its annotation {hint!r}: {exc}"
            )

    def discard_pending_tasks(self) -> int:
        """Drop every task waiting in the queue; returns how many were dropped."""
        count = self.taskqueue.discard_pending()
        logger.info("queue.purged", queue=self.name, count=count)
        return count

    def serialize(self, obj: object) -> bytes:
        """Encode a value with this broker's serializer."""
        return self.codec.encode_value(obj)

    def deserialize(self, message: bytes) -> Any:
        """Decode a value encoded by :meth:`serialize`."""
        return self.codec.decode_value(message)

    # -- the queue's state ------------------------------------------------------

    def size(self) -> int:
        """Tasks not yet started: queued, delayed or waiting for their arguments."""
        return self.taskqueue.size()

    def counts(self) -> dict[TaskStatus, int]:
        """How many tasks of the queue are in each state (see ``TaskQueue.counts``)."""
        return self.taskqueue.counts()

    def ping(self) -> bool:
        """Whether the backend answers (raises BackendUnavailable when it cannot be reached)."""
        return self.taskqueue.ping()

    def queue_names(self) -> list[str]:
        """Every queue the backend holds worq data for, sorted."""
        return self.taskqueue.queue_names()

    @property
    def backend_kind(self) -> str:
        """``memory`` or ``redis``: the module that implements the backend."""
        return type(self.taskqueue).__module__.rpartition(".")[2]

    @property
    def initial_lease(self) -> float:
        """Seconds a task is leased for when taken, until a heartbeat renews it."""
        return self.taskqueue.initial_lease

    def serving(self, url: str, name: str, initial_lease: float) -> Broker:
        """A broker on queue ``name`` at ``url`` that runs this broker's tasks.

        A process pool's worker process that takes its own tasks calls this on
        the broker its ``init_func`` returned: that broker itself when it is
        on the pool's queue already (so whatever the init function set up on
        it holds), else one made for that queue sharing this one's Runner.
        Either way its tasks are leased for ``initial_lease`` seconds, the
        pool's.
        """
        if (self.url, self.name) == (url, name):
            broker = self
        else:
            from worq._backends import make_taskqueue  # worq._backends imports this module

            broker = Broker(
                make_taskqueue(url, name),
                serializer=self.codec.name,
                max_message_size=self.max_message_size,
            )
            broker.runner = self.runner
        broker.taskqueue.initial_lease = initial_lease
        return broker

    # -- worker side: the manual's methods and the pools' pipeline -------------

    def next_task(self, timeout: float | None = None) -> TaskMessage | None:
        """Take the next task, waiting up to ``timeout`` seconds (None: forever).

        A message that cannot be decoded does not stop the worker: its task
        is failed with the reason, an event is logged and None is returned.
        The task carries its ``attempt`` and ``lease`` (see TaskMessage).
        """
        taken = self.take(timeout)
        return None if taken is None else self.decode_taken(*taken)

    def decode_taken(self, envelope: Envelope, payload: bytes) -> TaskMessage | None:
        """A task taken as its envelope and payload (:meth:`take`), its payload decoded.

        Returns:
            The task; None when its payload cannot be decoded here, the task
            then being failed with the reason.
        """
        try:
            return TaskMessage.join(envelope, self.codec.decode_payload(payload))
        except SerializationError as exc:
            self._reject(envelope, f"message could not be decoded ({self.codec.name}): {exc}")
            return None

    def take(self, timeout: float | None = None) -> tuple[Envelope, bytes] | None:
        """Take the next task as its envelope and its encoded payload.

        The payload is left encoded: the process pool hands it to the worker
        process that runs the task, which alone decodes it. A task whose
        envelope is unusable is failed with the reason, and None returned.
        """
        taken = self.taskqueue.get(timeout)
        if taken is None:
            return None
        return self._open(taken)

    def _open(self, taken: Taken) -> tuple[Envelope, bytes] | None:
        """The taken task's envelope with its attempt and lease; None (rejected) if unusable."""
        if not taken.message and not taken.lease:
            # An id in the queue with no task behind it: nothing to fail, only report.
            logger.error(
                "task.rejected", task_id=taken.task_id, queue=self.name,
                error="an id in the queue names no stored task (garbage written to the queue?)",
            )  # fmt: skip
            return None
        try:
            envelope, payload = decode_envelope(taken.message, taken.task_id, self.name)
        except SerializationError as exc:
            reason = f"message could not be decoded ({self.codec.name}): {exc}"
            self._reject_taken(taken, reason)
            return None
        return attrs.evolve(envelope, attempt=taken.attempt, lease=taken.lease), payload

    def _reject_taken(self, taken: Taken, reason: str) -> None:
        """Fail a task whose envelope is unusable, so its waiter learns why."""
        logger.error("task.rejected", task_id=taken.task_id, queue=self.name, error=reason)
        failure = TaskFailure("?", self.name, taken.task_id, reason)
        data = self.codec.encode_value(failure)
        if taken.lease:
            note = self._note(FAILED, reason)
            self.taskqueue.set_result(
                taken.task_id, data, DEFAULT_RESULT_TIMEOUT, taken.lease, note
            )
        else:  # forgotten once taken: only the registry keeps it
            self.taskqueue.file_failure(
                taken.task_id, taken.message, taken.attempt, self._note(FAILED, reason)
            )

    def _reject(self, task: Envelope, reason: str) -> None:
        """Fail a task whose arguments cannot be decoded here: no run would do better."""
        logger.error("task.rejected", task, error=reason)
        failure = TaskFailure(task.name, task.queue, task.id, reason)
        self._store(task, self.runner.encode(task, failure))

    def invoke(self, task: TaskMessage) -> None:
        """Run a task taken with :meth:`next_task`, then store its outcome or retry it.

        Raises:
            BaseException: The ``SystemExit``, ``KeyboardInterrupt``... the task
                raised, once its failure is stored (or its retry queued), so
                that a worker loop built on this method can stop, as in WorQ 1.1.
        """
        outcome = self.execute(task)
        self.record(task, self.runner.encode(task, outcome.value, outcome.retry_reason))
        if outcome.aborted is not None:
            raise outcome.aborted

    def execute(self, task: TaskMessage, arguments: Mapping[str, bytes] | None = None) -> Outcome:
        """Run a task taken with :meth:`next_task`; return its outcome without storing it.

        Args:
            task: The task.
            arguments: The encoded results handed to the task as arguments, when
                the caller already fetched them (see :meth:`get_arguments`);
                by default they are fetched from the backend when needed.
        """
        handed = self.get_arguments(task) if arguments is None else arguments
        return self.runner.run(task, handed)

    def get_arguments(self, task: Envelope) -> dict[str, bytes]:
        """The encoded results handed to ``task`` as arguments (none unless it has refs)."""
        return self.taskqueue.get_arguments(task.id) if task.refs else {}

    def record_outcome(
        self,
        task: Envelope,
        data: bytes,
        retry_reason: str | None = None,
        error: str | None = None,
    ) -> None:
        """End a run: run the task again if it failed and may retry, else store ``data``.

        Args:
            task: The task, with the attempt and lease it was taken with.
            data: The encoded outcome (see ``Runner.encode``).
            retry_reason: Why another run may succeed; None if it may not.
            error: The failure's error when the run failed: stored, the
                failure is also filed in the failed-task registry.
        """
        self.record(task, EncodedOutcome(data, retry_reason, error))

    def record(self, task: Envelope, ended: EncodedOutcome) -> None:
        """End a run with its encoded outcome (see :meth:`record_outcome`).

        The one way a run's outcome reaches the backend, whichever pool ran it.
        """
        if ended.retry_reason is not None and self._retry(task, ended.retry_reason):
            return
        self._store(task, ended)

    def record_outcome_and_take(
        self, task: Envelope, ended: EncodedOutcome, wait: float = 0.0
    ) -> tuple[Envelope, bytes] | None:
        """:meth:`record`, then :meth:`take` waiting at most ``wait`` seconds.

        A worker that finished a task asks for its next one with the outcome:
        one backend call (``TaskQueue.set_result_and_get``) when the outcome is
        stored under a lease, the common case; two when the task retries.

        Returns:
            The next task, as :meth:`take` returns it; None when none was
            runnable within ``wait``.
        """
        if ended.retry_reason is not None and self._retry(task, ended.retry_reason):
            return self.take(wait)
        if not (task.tracked and task.lease) or ended.error is not None:  # or a failure to file
            self._store(task, ended)
            return self.take(wait)
        stored, taken = self.taskqueue.set_result_and_get(
            task.id, ended.data, task.options.result_timeout, task.lease, wait
        )
        if not stored:
            logger.warning("task.lease_lost", task, attempt=task.attempt)
        return None if taken is None else self._open(taken)

    def set_result(self, task: Envelope, result: Any) -> None:
        """Store a task's outcome (a value or a TaskFailure) for its waiter and dependants.

        The manual's name: :meth:`record_outcome` without a retry. A value the
        serializer refuses is replaced by a TaskFailure saying so.
        """
        self.record(task, self.runner.encode(task, result))

    def _retry(self, task: Envelope, reason: str) -> bool:
        """Queue the task again, after its backoff, if it has retries left.

        Returns:
            False when no retry is left (the caller stores the failure).
        """
        if task.attempt > task.options.retries:
            return False
        delay = round(task.options.retry_delay(task.attempt), 3)
        if self.taskqueue.retry_task(task.id, task.lease, delay):
            logger.warning("task.retrying", task, attempt=task.attempt, delay_s=delay, error=reason)
        else:
            logger.warning("task.lease_lost", task, attempt=task.attempt, error=reason)
        return True

    def _store(self, task: Envelope, ended: EncodedOutcome) -> None:
        """Store an encoded outcome, unless the task's lease was lost meanwhile; file a
        failure in the failed-task registry too.

        A lost lease means the task was reclaimed (its lease lapsed) and retried
        or expired: the outcome of this late run is dropped, with an event. An
        untracked task (fire and forget, no retries) has nothing to store; a
        failure of one is filed with the message its runner gave back.
        """
        note = None if ended.error is None else self._note(FAILED, ended.error)
        if not task.tracked:
            if note is not None and ended.message is not None:
                self.taskqueue.file_failure(task.id, ended.message, task.attempt, note)
            return
        lease = task.lease or None
        timeout = task.options.result_timeout
        if not self.taskqueue.set_result(task.id, ended.data, timeout, lease, note):
            logger.warning("task.lease_lost", task, attempt=task.attempt)

    def _note(self, status: str, error: str) -> FailureNote:
        """What a failure files in the registry, bounded as this broker says."""
        return FailureNote(status, error, self.failed_limit, self.failed_ttl)

    def renew_lease(self, task: Envelope) -> None:
        """Renew a running task's lease, a few heartrates long."""
        renewed = self.taskqueue.renew_lease(
            task.id, task.options.heartrate * HEARTBEAT_GRACE, task.lease or None
        )
        if not renewed and task.tracked:
            logger.warning("task.lease_lost", task, attempt=task.attempt)

    def heartbeat(self, task: Envelope) -> None:
        """The manual's name for :meth:`renew_lease`."""
        self.renew_lease(task)

    def task_failed(self, task: Envelope | TaskLike, reason: str = WORKER_LOST) -> bool:
        """Signal that a task failed without an outcome: retry it, or expire it.

        Args:
            task: A task taken with :meth:`next_task` (its run ended without an
                outcome, say its worker died): it is retried if it has retries
                left, else expired. Or any object with the task's ``id`` and
                ``name``, a Deferred included: the task is expired now, whatever
                it is doing (queued, waiting for arguments, running); a run
                still going loses its lease, so its late outcome is dropped.
            reason: Why, for the TaskExpired its waiter and dependants get.

        Returns:
            True when the task was retried or expired; False when it was
            already finished (or unknown), which changes nothing.
        """
        if isinstance(task, Envelope) and task.lease:
            if self._retry(task, reason):
                return True
            expired = TaskExpired(task.name, task.queue, task.id, reason)
            stored = self.taskqueue.set_result(
                task.id,
                self.runner.encode_outcome(task, expired),
                task.options.result_timeout,
                task.lease,
                self._note(EXPIRED, reason),
            )
            if stored:
                logger.error("task.expired", task, attempt=task.attempt, error=reason)
            return stored
        expired = TaskExpired(task.name, self.name, task.id, reason)
        stored = self.taskqueue.set_result(
            task.id, self.codec.encode_value(expired), DEFAULT_RESULT_TIMEOUT, None,
            self._note(EXPIRED, reason),
        )  # fmt: skip
        if stored:
            logger.error(
                "task.expired", task_id=task.id, task_name=task.name, queue=self.name,
                attempt=None, error=reason,
            )  # fmt: skip
        return stored

    def reap(self, limit: int = 100) -> int:
        """Settle up to ``limit`` tasks whose lease lapsed: retry or expire each.

        Any process may call this: each lapsed task is settled exactly once,
        however many race. Worker pools call it periodically.

        Returns:
            How many tasks were settled.
        """
        reclaimed = self.taskqueue.reclaim(limit)
        for taken in reclaimed:
            self._settle(taken)
        return len(reclaimed)

    def _settle(self, taken: Taken) -> None:
        """Retry or expire a reclaimed task, reading only its envelope."""
        opened = self._open(taken)
        if opened is not None:
            self.task_failed(
                opened[0], "its lease lapsed: the worker running it stopped heartbeating"
            )

    def interrupt_waits(self) -> None:
        """End every wait for a task now going on through this broker (see ``TaskQueue``)."""
        self.taskqueue.interrupt_waits()

    def close(self) -> None:
        """Release the backend's connections."""
        self.taskqueue.close()
