"""The contracts between worq's parts, gathered in one place.

:class:`TaskQueue` is what a backend implements, :class:`WorkerPool` what a
pool implements and :class:`Codec` what a serializer implements. They are
``typing.Protocol`` classes: implementations do not inherit from them, they
match them, and mypy checks that they do.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from worq.const import TaskStatus
from worq.models import Payload

__all__ = [
    "AsyncTaskQueue",
    "Codec",
    "DeferResult",
    "FailureNote",
    "FiledFailure",
    "FireResult",
    "NewTask",
    "RetryResult",
    "ScheduleState",
    "Taken",
    "TaskLike",
    "TaskQueue",
    "TaskRecord",
    "WorkerPool",
]


class TaskLike(Protocol):
    """Anything naming one task: a Deferred, a taken TaskMessage, a SentTask...

    What WorQ 1.1's APIs call "an object with ``id`` and ``name``"
    (``Broker.pop_result``, ``Broker.task_failed``, ``Deferred(broker, task)``).
    """

    @property
    def id(self) -> str:
        """The task's id."""
        ...

    @property
    def name(self) -> str:
        """The task's dotted name."""
        ...


class DeferResult(enum.StrEnum):
    """What :meth:`TaskQueue.defer_task` did."""

    STORED = "stored"
    """Stored: enqueued at once if every argument was ready, else held as pending."""
    DUPLICATE = "duplicate"
    """Nothing stored: a task with this id exists."""
    MISSING_ARGUMENT = "missing_argument"
    """Nothing stored: an argument's task has no result to take (fetched, expired, unknown)."""


@attrs.frozen
class NewTask:
    """One task of a batch handed to :meth:`TaskQueue.enqueue_tasks`.

    Attributes:
        task_id: The task's id.
        message: The encoded task message.
        keep_result: Store a result placeholder, then the result.
        track: Hold the task under a lease while it runs (see Taken); a task
            with ``argument_ids`` is always tracked.
        delay: Seconds before the task becomes runnable (0 with ``argument_ids``).
        argument_ids: Ids of the tasks whose results it takes as arguments:
            when any, it is stored as :meth:`TaskQueue.defer_task` stores it.
    """

    task_id: str
    message: bytes
    keep_result: bool
    track: bool
    delay: float = 0
    argument_ids: tuple[str, ...] = ()


class FireResult(enum.StrEnum):
    """What :meth:`TaskQueue.fire_schedule` did."""

    FIRED = "fired"
    """The task was stored, and the time recorded as the schedule's last fire."""
    SKIPPED = "skipped"
    """The time was recorded as passed without sending anything: asked to (a
    missed time), or the previous fire's task has not finished (overlap)."""
    DONE = "done"
    """Nothing: the schedule's last fire is at this time or later (another pool
    fired it, or passed over it), or it is not registered."""


@attrs.frozen
class ScheduleState:
    """What a backend stores of one schedule, shared by every pool that runs it.

    Attributes:
        definition: What the pools registered (JSON, for listings).
        last_ms: The latest scheduled time fired or passed over (ms since the epoch).
        next_ms: The scheduled time after it.
        task_id: The id of the task of the latest fire; "" before the first.
    """

    definition: bytes
    last_ms: int
    next_ms: int
    task_id: str = ""


@attrs.frozen
class Taken:
    """A task handed to a worker (or reclaimed by a sweeper) under a lease.

    Attributes:
        task_id: The task's id.
        message: The encoded task message.
        attempt: Runs so far, this one included (1 for the first run).
        lease: Token that lets its holder heartbeat, retry or finish the
            task; a newer lease (a reclaim) makes older holders' calls no-ops.
            "" for a fire-and-forget task that is not tracked.
    """

    task_id: str
    message: bytes
    attempt: int = 1
    lease: str = ""


@attrs.frozen
class FailureNote:
    """What a failed or expired outcome files in its queue's failed-task registry.

    Attributes:
        status: ``"failed"`` (the task raised, or could not run) or ``"expired"``
            (it ran out of time or retries without an outcome: its worker died).
        error: What went wrong, as the task's waiter reads it.
        limit: The registry keeps the latest ``limit`` entries of its queue.
        keep_for: And each for this many seconds.
    """

    status: str
    error: str
    limit: int
    keep_for: float


@attrs.frozen
class FiledFailure:
    """One entry of a queue's failed-task registry.

    Attributes:
        task_id: The task's id.
        status: ``"failed"`` or ``"expired"`` (see :class:`FailureNote`).
        error: What went wrong.
        attempt: How many runs it had (0: it never started).
        failed_ms: When it was filed (ms since the epoch, the backend's clock).
        message: The encoded task message, as it was sent: what a retry sends again.
        dependants: Ids of the pending tasks the failure was handed to as an argument.
    """

    task_id: str
    status: str
    error: str
    attempt: int
    failed_ms: int
    message: bytes
    dependants: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class TaskRecord:
    """What a backend holds of one task, for a look at it (:meth:`TaskQueue.inspect`).

    Attributes:
        status: ``"pending"``, ``"delayed"``, ``"enqueued"``, ``"processing"``, or
            ``"completed"`` once finished (while its outcome waits to be taken,
            or it is in the failed-task registry).
        message: The task's message as sent, while it is not finished; b"" after.
        attempt: Runs so far (0 before the first).
        started_ms: When its latest run began (ms since the epoch); None before.
        worker: Who took it for that run (``host:pid``); "" before.
        outcome: Its stored outcome, while not taken; None otherwise.
        finished_ms: When it finished (ms since the epoch), while its outcome
            waits to be taken; None otherwise.
        dependants: Ids of the pending tasks waiting for its result.
        filed: Its failed-task registry entry, if it has one.

    While a finished task's outcome waits, ``message`` (cut to its envelope's
    line when over 4 KiB), ``attempt``, ``started_ms`` and ``worker`` are
    those of its last run, kept with the outcome.
    """

    status: str
    message: bytes = b""
    attempt: int = 0
    started_ms: int | None = None
    worker: str = ""
    outcome: bytes | None = None
    finished_ms: int | None = None
    dependants: tuple[str, ...] = ()
    filed: FiledFailure | None = None


class RetryResult(enum.StrEnum):
    """What :meth:`TaskQueue.retry_failed` did with one task id."""

    RETRIED = "retried"
    """Queued again (or waiting again for its arguments), out of the registry."""
    UNKNOWN = "unknown"
    """Nothing: no entry of that id in the registry."""
    BUSY = "busy"
    """Nothing: a task of that id exists again (sent anew, or retried already)."""
    MISSING_ARGUMENT = "missing_argument"
    """Nothing: the result of a task it takes as an argument is gone (taken or expired)."""


class TaskQueue(Protocol):
    """A queue backend: stores task messages and results as opaque bytes.

    Backends never see Python objects, only ids and bytes; the broker encodes
    and decodes. Every method is atomic and thread-safe: a crash at any moment
    leaves each task either fully before or fully after a step.

    Task/result lifecycle:

    1. ``enqueue_task``/``defer_task`` store the task (and its result
       placeholder) and queue it, after a delay, or once every task it takes
       as an argument has finished.
    2. ``get`` takes a task: a tracked one (see
       :attr:`worq.models.Envelope.tracked`) is held under a lease that
       lapses after ``initial_lease`` seconds; an untracked one is
       forgotten.
    3. ``renew_lease`` (heartbeats) renews the lease.
    4. ``set_result`` stores the outcome, hands it to every pending task that
       takes it as an argument and queues those whose arguments are complete;
       or ``retry_task`` queues the task again.
    5. A lease that lapses (its worker vanished) leaves the task ``lapsed``
       until ``reclaim``/``reclaim_task`` hand it, under a fresh lease, to
       exactly one caller, who retries or expires it.

    Where WorQ 1.1 split step 4 into ``set_result``, ``set_argument`` and
    ``undefer_task`` (and enqueueing into ``reserve_argument`` and
    ``defer_task``), worq does each step in one atomic call, so that no crash
    can strand a task between them and each costs one round trip.
    """

    @property
    def url(self) -> str:
        """The URL the backend was made from, password included: mask it to show it."""
        ...

    @property
    def name(self) -> str:
        """The queue name; named queues on one backend never share tasks."""
        ...

    initial_lease: float
    """Seconds a lease lasts when a task is taken, before a heartbeat renews it.

    Backends take it as the ``initial_result_timeout`` constructor argument,
    the manual's name, and keep that name as an alias attribute."""

    def enqueue_task(
        self, task_id: str, message: bytes, *, keep_result: bool, track: bool, delay: float = 0
    ) -> bool:
        """Queue a task, runnable after ``delay`` seconds.

        Args:
            keep_result: Store a result placeholder, then the result.
            track: Hold the task under a lease while it runs (see Taken).

        Returns:
            False, storing nothing, when a task with this id exists.
        """
        ...

    def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult:
        """Queue a task once the results of ``argument_ids`` are all available.

        Results already available are taken as arguments at once; the others
        are handed over by ``set_result``. Deferred tasks are always tracked.
        """
        ...

    def enqueue_tasks(self, tasks: Sequence[NewTask]) -> list[DeferResult]:
        """Store many tasks, as many :meth:`enqueue_task` (or, for a task with
        ``argument_ids``, :meth:`defer_task`) calls would, in order, with few
        round trips.

        Each task is stored whole or not at all, on its own: the batch as a
        whole is not atomic, and a task whose id is taken (by an existing task
        or an earlier one of the batch) is refused while the others are stored.
        Retried after a lost reply, no task is stored twice.

        Returns:
            What happened to each task, in order: ``STORED``, ``DUPLICATE``
            or (with ``argument_ids``) ``MISSING_ARGUMENT``.
        """
        ...

    def get(self, timeout: float | None) -> Taken | None:
        """Take the next runnable task, or None after ``timeout`` seconds (None: forever)."""
        ...

    def size(self) -> int:
        """Number of tasks not yet started: queued, delayed or waiting for arguments."""
        ...

    def counts(self) -> dict[TaskStatus, int]:
        """How many unfinished tasks are in each state: ``pending`` (waiting for
        arguments), ``delayed``, ``enqueued`` and ``processing`` (leased, lapsed
        leases included), each key always present; approximate while tasks move."""
        ...

    def ping(self) -> bool:
        """True when the store answers; raises BackendUnavailable when it cannot be reached."""
        ...

    def discard_pending(self) -> int:
        """Drop every task not yet started (see :meth:`size`); their waiters see them expire."""
        ...

    def get_arguments(self, task_id: str) -> dict[str, bytes]:
        """The results handed to a task as arguments, keyed by argument task id."""
        ...

    def renew_lease(self, task_id: str, timeout: float, lease: str | None = None) -> bool:
        """Renew a running task's lease for ``timeout`` seconds (a heartbeat).

        Backends keep the manual's name for it, ``set_task_timeout``, as an alias.

        Returns:
            False when the task is not running under ``lease`` (None: any lease).
        """
        ...

    def get_status(self, task_id: str) -> TaskStatus | None:
        """``pending``, ``delayed``, ``enqueued``, ``processing``, ``lapsed`` or
        ``completed``; None when unknown."""
        ...

    def set_result(
        self,
        task_id: str,
        message: bytes,
        timeout: float,
        lease: str | None = None,
        failure: FailureNote | None = None,
    ) -> bool:
        """Finish a task: keep its result ``timeout`` seconds, hand it to its dependants.

        A task that ignores its result is just forgotten. With a ``failure``
        (the outcome is a TaskFailure), the task is also filed in the queue's
        failed-task registry, in the same atomic step: its message, the note,
        its attempts and the dependants the failure is handed to (see
        :meth:`failed_tasks`).

        With a ``lease``, only the run holding it may finish the task. Without
        one (None), the task is finished from outside whatever its state
        (queued, delayed, waiting for arguments, running): it leaves the queue,
        and a run still going loses its lease, so its outcome is dropped.

        Returns:
            False, changing nothing, when ``lease`` is given and the task is not
            running under it any more (it was reclaimed, retried or finished),
            or, without a lease, when the task is unknown or already finished.
        """
        ...

    def set_result_and_get(
        self, task_id: str, message: bytes, timeout: float, lease: str, wait: float = 0.0
    ) -> tuple[bool, Taken | None]:
        """:meth:`set_result` under ``lease``, then ``get(wait)``, in one backend call.

        A worker that finished a task asks for its next one in the same round
        trip. The task is finished first: its result is stored whether or not
        another task is there to take, and before any wait for one. ``wait``
        (seconds, a short one) lets the next task come in that call too when
        it is sent a moment later.

        Returns:
            What :meth:`set_result` returns, and the task taken (None when none
            was runnable within ``wait``).
        """
        ...

    def retry_task(self, task_id: str, lease: str, delay: float) -> bool:
        """Queue a running task again, runnable after ``delay`` seconds.

        Returns:
            False, changing nothing, when the task is not running under ``lease``.
        """
        ...

    def reclaim(self, limit: int) -> list[Taken]:
        """Take over up to ``limit`` tasks whose lease lapsed, each under a fresh lease.

        Each lapsed task is handed to exactly one caller, however many race.
        """
        ...

    def reclaim_task(self, task_id: str) -> Taken | None:
        """Take over one task if its lease lapsed (see :meth:`reclaim`)."""
        ...

    def pop_result(self, task_id: str, timeout: float | None) -> bytes | TaskStatus | None:
        """Take a task's result, waiting up to ``timeout`` seconds (None: forever; 0: no wait).

        Returns:
            The result message; ``TaskStatus.LAPSED`` as soon as the task's
            lease has lapsed (reclaim it to settle it); ``TaskStatus.EXPIRED``
            when the task is unknown; None when ``timeout`` passed first.
        """
        ...

    def pop_results(
        self, task_ids: Sequence[str], timeout: float | None
    ) -> dict[str, bytes | TaskStatus]:
        """Take the results of many tasks, waiting up to ``timeout`` seconds for them all.

        Like :meth:`pop_result` for each id, with few round trips: it returns
        once every task has an answer, as soon as one lease has lapsed (so
        that the caller settles it and calls again for the rest), or when
        ``timeout`` passed (None: never; 0: no wait).

        Returns:
            By task id, the answers that came: the result message,
            ``TaskStatus.LAPSED`` or ``TaskStatus.EXPIRED`` (as for
            :meth:`pop_result`); ids still waiting are left out.
        """
        ...

    def interrupt_waits(self) -> None:
        """Make every :meth:`get` now waiting on this object return None at once.

        A stopping pool calls it so that its idle workers leave their wait
        now, not when their timeout runs out; waits for results go on.
        """
        ...

    def register_schedules(self, schedules: Sequence[tuple[str, ScheduleState]]) -> None:
        """Store each named schedule's definition; its state only if it has none.

        A pool registers its schedules when it starts, the state saying the
        schedule's latest time before now was passed over: a new schedule
        does not fire for times before it existed, and a known one keeps the
        last fire the pools stored, so that a restart neither repeats nor
        forgets one.
        """
        ...

    def schedule_states(
        self, alive_until_ms: int | None = None
    ) -> tuple[dict[str, ScheduleState], int]:
        """Every registered schedule's state, and until when a scheduler was last
        said to be alive (ms since the epoch; 0: never).

        Args:
            alive_until_ms: Raise that mark to this time (no lower), in the
                same atomic step: a scheduler that looks at the states says it
                runs. A time after the mark was missed: no scheduler ran then.
        """
        ...

    def fire_schedule(
        self, name: str, fire_ms: int, next_ms: int, task: NewTask | None, *, skip_running: bool
    ) -> FireResult:
        """Fire schedule ``name`` for the time ``fire_ms``, atomically, if its last
        fire is older: store ``task`` and record ``fire_ms`` as the last fire
        (``next_ms`` the next), all or nothing.

        Args:
            task: The task to send; None records the time as passed over.
            skip_running: Send nothing (``SKIPPED``) while the task of the
                previous fire has not finished (waits or runs).
        """
        ...

    def announce_pool(self, pool_id: str, record: bytes, ttl: float) -> None:
        """Store a live pool's record for ``ttl`` seconds (0: forget it now).

        A pool announces itself when it starts and again with each of its
        heartbeats; a pool that dies stops announcing, and its record lapses.
        """
        ...

    def live_pools(self) -> dict[str, bytes]:
        """The records of the pools whose announcement has not lapsed, by pool id."""
        ...

    def add_stats(self, counts: Mapping[tuple[int, str], int], keep_minutes: int) -> None:
        """Add a pool's counts to the queue's: (minute since the epoch, field) -> how
        many; each minute kept ``keep_minutes`` minutes (see :mod:`worq.stats`)."""
        ...

    def stats(self, first_minute: int, last_minute: int) -> dict[int, dict[str, int]]:
        """The queue's counts of the minutes from ``first_minute`` to ``last_minute``
        (since the epoch) that have any, by minute."""
        ...

    def inspect(self, task_id: str) -> TaskRecord | None:
        """All the backend holds of a task, read at once; None when it holds nothing."""
        ...

    def next_in_line(self) -> tuple[str, bytes] | None:
        """The runnable task a worker would take next: its id and its message's
        envelope (the bytes up to the first newline, without the payload);
        None when none waits."""
        ...

    def file_failure(self, task_id: str, message: bytes, attempt: int, note: FailureNote) -> None:
        """File a failed task the backend no longer holds (a fire-and-forget task,
        forgotten once taken) in the failed-task registry."""
        ...

    def failed_tasks(self, limit: int) -> list[FiledFailure]:
        """The registry's entries, the latest first, at most ``limit``; entries past their
        time are dropped first."""
        ...

    def retry_failed(self, task_ids: Sequence[str] | None) -> list[tuple[str, RetryResult]]:
        """Send failed tasks again, each as a new attempt of the same id, in one atomic step.

        Tasks go in the order they failed (``None``: every entry), so a
        dependency is queued before its dependants. A retried task leaves the
        registry; its stored failure is dropped, so its waiter gets the new
        outcome; the pending tasks its failure was handed to wait for the new
        one instead; and the registry's tasks that failed because it did (their
        Deferred argument) are retried with it, waiting for it.

        Returns:
            What happened to each id asked for and to each dependant retried along,
            in the order they were handled.
        """
        ...

    def discard_failed(self, task_ids: Sequence[str] | None) -> list[str]:
        """Drop entries from the registry (``None``: all of them); the ids dropped."""
        ...

    def queue_names(self) -> list[str]:
        """The names of every queue this backend's store holds worq data for, sorted.

        So that a typo in a queue name (``defualt``) shows as a second queue.
        """
        ...

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...


class WorkerPool(Protocol):
    """Runs tasks taken from a broker until stopped."""

    def start(self, timeout: float = ...) -> None:
        """Start the workers; ``timeout`` bounds each wait for a task."""
        ...

    def stop(self, *, join: bool = ...) -> None:
        """Ask the workers to finish their current task and stop; optionally wait."""
        ...

    def join(self) -> None:
        """Wait until every worker has stopped."""
        ...


class Codec(Protocol):
    """Turns messages and values into bytes and back.

    Encoding refuses what it cannot represent faithfully with
    :class:`~worq.exceptions.SerializationError` naming the offending type;
    decoding raises the same error for bytes it cannot read.
    """

    @property
    def name(self) -> str:
        """``"json"`` or ``"pickle"``."""
        ...

    def encode_payload(self, payload: Payload) -> bytes:
        """Encode a task's arguments (the envelope is always JSON: see :mod:`worq._wire`)."""
        ...

    def decode_payload(self, data: bytes) -> Payload:
        """Decode what :meth:`encode_payload` wrote."""
        ...

    def encode_value(self, value: object) -> bytes:
        """Encode a task result or argument value (a TaskFailure is a value too)."""
        ...

    def decode_value(self, data: bytes) -> Any:
        """Decode what :meth:`encode_value` produced."""
        ...

    def structure(self, value: Any, hint: Any) -> Any:
        """Convert a decoded value to the type ``hint`` (a task's annotation)."""
        ...


class AsyncTaskQueue(Protocol):
    """The client half of a backend, for async code (``worq.aio``).

    Sends tasks and takes results, as :class:`TaskQueue`'s methods of the
    same names do, awaited: a wait for a result never polls and never
    blocks the event loop. ``sync`` is a :class:`TaskQueue` on the same
    queue, for what the async client does in a thread (rare steps: settling
    a lapsed lease, explaining a refused task).
    """

    @property
    def sync(self) -> TaskQueue: ...

    @property
    def url(self) -> str: ...

    @property
    def name(self) -> str: ...

    async def enqueue_task(
        self, task_id: str, message: bytes, *, keep_result: bool, track: bool, delay: float = 0
    ) -> bool: ...

    async def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult: ...

    async def enqueue_tasks(self, tasks: Sequence[NewTask]) -> list[DeferResult]: ...

    async def get_status(self, task_id: str) -> TaskStatus | None: ...

    async def pop_result(
        self, task_id: str, timeout: float | None
    ) -> bytes | TaskStatus | None: ...

    async def close(self) -> None: ...
