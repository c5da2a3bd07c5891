"""In-memory task queue and result store (process local).

Every :class:`TaskQueue` made from the same URL and queue name in one process
shares one store, so a worker's broker and a client's queue built separately
(as WorQ's examples do) see the same tasks. Waits block on a condition
variable, woken by changes and timed to the next due delay, lapsing lease or
expiring result; nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import attrs

from worq._deadline import Deadline
from worq._ids import worker_label
from worq._wire import envelope_line, envelope_refs
from worq.const import DEFAULT, TaskStatus
from worq.typing import (
    DeferResult,
    FailureNote,
    FiledFailure,
    FireResult,
    NewTask,
    RetryResult,
    ScheduleState,
    Taken,
    TaskRecord,
)

__all__ = ["RUN_RECORD_MESSAGE", "TaskQueue"]

RUN_RECORD_MESSAGE = 4096
"""A finished task's message is kept with its outcome (for a look at the task) up to
this many bytes; a bigger one keeps only its envelope. As on Redis (``_lib.lua``)."""


@attrs.define
class _Record:
    """What the store knows of one task, from enqueue until its result is taken."""

    status: TaskStatus
    keep_result: bool
    track: bool
    message: bytes = b""
    """Kept so that it can run again, then (cut) while its outcome waits."""
    result: bytes | None = None
    result_expires: float = math.inf
    attempt: int = 0
    lease: int = 0
    """The current lease's token, which holders must show; 0 before the first."""
    lease_deadline: float = math.inf
    started_ms: int | None = None
    """When its latest run began (ms since the epoch)."""
    finished_ms: int | None = None
    """When it finished (ms since the epoch)."""
    worker: str = ""
    """Who took it for that run (``host:pid``)."""
    waiting_on: set[str] = attrs.Factory(set)
    arguments: dict[str, bytes] = attrs.Factory(dict)
    dependants: list[str] = attrs.Factory(list)

    def holds(self, lease: str | None) -> bool:
        """True while the task runs under ``lease`` (None: under any lease)."""
        return self.status is TaskStatus.PROCESSING and (lease is None or lease == str(self.lease))

    def lapsed(self, now: float) -> bool:
        return self.status is TaskStatus.PROCESSING and self.lease_deadline <= now


@attrs.frozen
class _Filed:
    """A failed-task registry entry, with what a retry needs to store the task again."""

    entry: FiledFailure
    keep_result: bool
    track: bool
    lapses_ms: int


@attrs.define
class _Store:
    """The state of one memory queue, guarded by ``lock``.

    Takers wait on ``cond``, waiters for outcomes on ``outcomes``, both on the
    one lock: a task made runnable wakes one taker, an outcome stored wakes
    the waiters for outcomes, and neither wakes the other kind (with one
    condition for all, every change woke every waiting thread, each to
    contend for the lock and the GIL and go back to sleep).
    """

    lock: threading.RLock = attrs.Factory(threading.RLock)
    cond: threading.Condition = attrs.Factory(
        lambda self: threading.Condition(self.lock), takes_self=True
    )
    """Takers' condition: a task may be runnable (``with store.cond`` holds ``lock``)."""
    outcomes: threading.Condition = attrs.Factory(
        lambda self: threading.Condition(self.lock), takes_self=True
    )
    """Waiters' condition: an outcome was stored, or a task went."""
    queue: deque[str] = attrs.Factory(deque)
    delayed: list[tuple[float, int, str]] = attrs.Factory(list)
    """Heap of (due time, tie-breaker, task id)."""
    records: dict[str, _Record] = attrs.Factory(dict)
    next_expiry: float = math.inf
    order: itertools.count[int] = attrs.Factory(itertools.count)
    lease_tokens: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))
    """One counter for the whole store, never per task record, so that a token is
    unique across every incarnation of a task id: a stale run of a task sent
    before under the same id can never finish the new one."""
    leases: list[tuple[float, str]] = attrs.Factory(list)
    """Heap of (lease deadline, task id); entries whose task moved on are stale."""
    watchers: dict[str, set[Callable[[], None]]] = attrs.Factory(dict)
    """What to call when a task's outcome is stored or the task goes: async waits."""
    schedules: dict[str, ScheduleState] = attrs.Factory(dict)
    schedulers_alive_until: int = 0
    pools: dict[str, tuple[bytes, float]] = attrs.Factory(dict)
    """Live pools' records, by pool id, with when each lapses (monotonic)."""
    failed: dict[str, _Filed] = attrs.Factory(dict)
    """The failed-task registry, oldest first."""
    stats: dict[int, Counter[str]] = attrs.Factory(dict)
    """The pools' per-minute counts, by minute since the epoch."""

    def file_failure(self, filed: _Filed, limit: int) -> None:
        """Add an entry to the failed-task registry, dropping the lapsed and the oldest."""
        self.failed.pop(filed.entry.task_id, None)
        self.failed[filed.entry.task_id] = filed
        self.drop_lapsed_failures(filed.entry.failed_ms)
        for task_id in list(self.failed)[: max(0, len(self.failed) - limit)]:
            del self.failed[task_id]

    def link_dependant(self, failed_id: str, dependant: str) -> None:
        """A task sent taking the result of ``failed_id``, which had already failed and is
        in the registry: note it among that entry's dependants, so that a retry of the
        failed task takes it along (see ``TaskQueue.retry_failed``)."""
        filed = self.failed.get(failed_id)
        if filed is not None:
            entry = attrs.evolve(filed.entry, dependants=(*filed.entry.dependants, dependant))
            self.failed[failed_id] = attrs.evolve(filed, entry=entry)

    def drop_lapsed_failures(self, now_ms: int) -> None:
        for task_id in [i for i, f in self.failed.items() if f.lapses_ms <= now_ms]:
            del self.failed[task_id]

    def tell(self, task_id: str) -> None:
        """Wake the waiters for outcomes and call the watchers of ``task_id``: its
        outcome is stored, or it is gone."""
        self.outcomes.notify_all()
        for told in self.watchers.get(task_id, ()):
            told()

    def retimed(self) -> None:
        """Something every waiting thread times its wake-up by came earlier: wake them all."""
        self.cond.notify_all()
        self.outcomes.notify_all()

    def track_lease(self, task_id: str, record: _Record, deadline: float) -> None:
        earliest = self.earliest_lease()
        record.lease_deadline = deadline
        heapq.heappush(self.leases, (deadline, task_id))
        if deadline < earliest:  # waiters time their wake-up by the earliest lease
            self.retimed()

    def earliest_lease(self) -> float:
        """The nearest deadline of a running task's lease (drops stale heap entries)."""
        while self.leases:
            deadline, task_id = self.leases[0]
            record = self.records.get(task_id)
            if (
                record is not None
                and record.status is TaskStatus.PROCESSING
                and record.lease_deadline == deadline
            ):
                return deadline
            heapq.heappop(self.leases)
        return math.inf

    def lapsed(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` ids of running tasks whose lease lapsed."""
        found: list[str] = []
        while len(found) < limit and self.earliest_lease() <= now:
            task_id = heapq.heappop(self.leases)[1]
            if task_id not in found:  # one lease can have two equal heap entries
                found.append(task_id)
        return found

    def expire_results(self, now: float) -> None:
        """Drop results nobody took in time."""
        if now < self.next_expiry:
            return
        for task_id in [i for i, r in self.records.items() if r.result_expires <= now]:
            del self.records[task_id]
        self.next_expiry = min((r.result_expires for r in self.records.values()), default=math.inf)

    def promote_due(self, now: float) -> None:
        """Move delayed tasks whose time has come to the front of the queue."""
        while self.delayed and self.delayed[0][0] <= now:
            _, _, task_id = heapq.heappop(self.delayed)
            record = self.records.get(task_id)
            if record is not None and record.status is TaskStatus.DELAYED:
                record.status = TaskStatus.ENQUEUED
                self.queue.appendleft(task_id)
                self.cond.notify()  # the caller may take one; another taker the next

    def schedule(self, task_id: str, record: _Record, delay: float, now: float) -> None:
        """Make a task runnable now or after ``delay`` seconds."""
        if delay > 0:
            record.status = TaskStatus.DELAYED
            due = now + delay
            if not self.delayed or due < self.delayed[0][0]:
                self.retimed()  # waits are timed by the first delayed task
            heapq.heappush(self.delayed, (due, next(self.order), task_id))
        else:
            record.status = TaskStatus.ENQUEUED
            self.queue.append(task_id)
            self.cond.notify()  # one taker is enough for one task

    def keep_result_until(self, record: _Record, when: float) -> None:
        record.result_expires = when
        self.next_expiry = min(self.next_expiry, when)

    def next_wake(self) -> float:
        """When a waiter must look again even if nobody notifies it."""
        due = self.delayed[0][0] if self.delayed else math.inf
        return min(due, self.next_expiry, self.earliest_lease())

    def drop(self, task_ids: list[str]) -> None:
        """Forget tasks that will never run, and the pending tasks waiting on them.

        A work list, not recursion, so that a pending chain of any depth goes.
        Tasks that started (or finished) meanwhile are left alone.
        """
        while task_ids:
            task_id = task_ids.pop()
            record = self.records.get(task_id)
            if record is not None and record.status in _NOT_STARTED:
                del self.records[task_id]
                task_ids.extend(record.dependants)
                self.tell(task_id)

    def not_started(self) -> list[str]:
        """Ids of the tasks not yet started: queued, delayed or waiting for arguments."""
        return [i for i, r in self.records.items() if r.status in _NOT_STARTED]


_NOT_STARTED = frozenset({TaskStatus.ENQUEUED, TaskStatus.DELAYED, TaskStatus.PENDING})
_UNFINISHED = _NOT_STARTED | {TaskStatus.PROCESSING}
"""The statuses of a task that waits or runs: a schedule's previous fire still going."""
_COUNTED = (TaskStatus.PENDING, TaskStatus.DELAYED, TaskStatus.ENQUEUED, TaskStatus.PROCESSING)
"""The states :meth:`TaskQueue.counts` reports, in a task's order."""

_stores: dict[tuple[str, str], _Store] = {}
_stores_lock = threading.Lock()


def _store_for(url: str, name: str) -> _Store:
    with _stores_lock:
        return _stores.setdefault((url, name), _Store())


def _wait(condition: threading.Condition, store: _Store, now: float, deadline: Deadline) -> None:
    """Block on ``condition`` until notified, the next timed event, or ``deadline``."""
    wake = min(store.next_wake(), math.inf if deadline.at is None else deadline.at)
    condition.wait(None if wake == math.inf else max(0.0, wake - now))


class TaskQueue:
    """Simple in-memory task queue; see :class:`worq.typing.TaskQueue`.

    Args:
        url: ``memory://``, optionally with a label (``memory://tests``) that
            separates stores within a process.
        name: Queue name.
        initial_result_timeout: Seconds a lease lasts when a task is taken,
            before a heartbeat renews it (the manual's name; the attribute is
            ``initial_lease``).
    """

    def __init__(
        self, url: str = "memory://", name: str = DEFAULT, initial_result_timeout: float = 60
    ) -> None:
        self._url = url
        self._name = name
        self.initial_lease = initial_result_timeout
        self._store = _store_for(url, name)
        self._interrupts = 0
        """Counts interrupt_waits calls: a get that began before one returns None."""

    @classmethod
    def factory(
        cls, url: str, name: str = DEFAULT, initial_result_timeout: float = 60
    ) -> TaskQueue:
        """Make a queue (WorQ 1.1 spelling of the constructor)."""
        return cls(url, name, initial_result_timeout)

    @property
    def initial_result_timeout(self) -> float:
        """The manual's name for :attr:`initial_lease`."""
        return self.initial_lease

    @initial_result_timeout.setter
    def initial_result_timeout(self, seconds: float) -> None:
        self.initial_lease = seconds

    @property
    def url(self) -> str:
        return self._url

    @property
    def name(self) -> str:
        return self._name

    def _known(self, task_id: str, now: float) -> _Record | None:
        self._store.expire_results(now)
        return self._store.records.get(task_id)

    def enqueue_task(
        self, task_id: str, message: bytes, *, keep_result: bool, track: bool, delay: float = 0
    ) -> bool:
        with self._store.cond:
            return self._enqueue(task_id, message, keep_result, track, delay, time.monotonic())

    def _enqueue(
        self, task_id: str, message: bytes, keep_result: bool, track: bool, delay: float, now: float
    ) -> bool:
        """enqueue_task, the store's lock held."""
        store = self._store
        if self._known(task_id, now) is not None:
            return False
        record = _Record(TaskStatus.ENQUEUED, keep_result, track, message)
        store.records[task_id] = record
        store.schedule(task_id, record, delay, now)
        return True

    def enqueue_tasks(self, tasks: Sequence[NewTask]) -> list[DeferResult]:
        """Store the tasks in order, holding the store's lock once for them all."""
        results: list[DeferResult] = []
        with self._store.cond:
            now = time.monotonic()
            for task in tasks:
                if task.argument_ids:
                    results.append(
                        self._defer(task.task_id, task.message, task.argument_ids,
                                    task.keep_result, now)
                    )  # fmt: skip
                    continue
                stored = self._enqueue(
                    task.task_id, task.message, task.keep_result, task.track, task.delay, now
                )
                results.append(DeferResult.STORED if stored else DeferResult.DUPLICATE)
        return results

    def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult:
        with self._store.cond:
            return self._defer(task_id, message, argument_ids, keep_result, time.monotonic())

    def _defer(
        self,
        task_id: str,
        message: bytes,
        argument_ids: Sequence[str],
        keep_result: bool,
        now: float,
    ) -> DeferResult:
        """defer_task, the store's lock held."""
        store = self._store
        if self._known(task_id, now) is not None:
            return DeferResult.DUPLICATE
        arguments: list[tuple[str, _Record]] = []
        for arg_id in argument_ids:
            arg = store.records.get(arg_id)
            if arg is None or not arg.keep_result:
                return DeferResult.MISSING_ARGUMENT
            arguments.append((arg_id, arg))
        record = _Record(TaskStatus.PENDING, keep_result, True, message)
        for arg_id, arg in arguments:
            if arg.status is TaskStatus.COMPLETED and arg.result is not None:
                record.arguments[arg_id] = arg.result
                store.link_dependant(arg_id, task_id)
            else:
                record.waiting_on.add(arg_id)
                arg.dependants.append(task_id)
        store.records[task_id] = record
        if not record.waiting_on:
            store.schedule(task_id, record, 0, now)
        return DeferResult.STORED

    def get(self, timeout: float | None) -> Taken | None:
        store = self._store
        deadline = Deadline(timeout)
        with store.cond:
            epoch = self._interrupts
            while True:
                now = time.monotonic()
                store.promote_due(now)
                while store.queue:
                    task_id = store.queue.popleft()
                    record = store.records.get(task_id)
                    if record is None or record.status is not TaskStatus.ENQUEUED:
                        continue
                    if not record.track:
                        del store.records[task_id]
                        return Taken(task_id, record.message)
                    record.attempt += 1
                    record.started_ms, record.worker = time.time_ns() // 1_000_000, worker_label()
                    return self._lease(task_id, record, now)
                if deadline.passed(now) or self._interrupts != epoch:
                    return None
                _wait(store.cond, store, now, deadline)

    def _lease(self, task_id: str, record: _Record, now: float) -> Taken:
        record.status = TaskStatus.PROCESSING
        record.lease = next(self._store.lease_tokens)
        self._store.track_lease(task_id, record, now + self.initial_lease)
        return Taken(task_id, record.message, record.attempt, str(record.lease))

    def add_stats(self, counts: Mapping[tuple[int, str], int], keep_minutes: int) -> None:
        store = self._store
        with store.cond:
            for (minute, field), count in counts.items():
                store.stats.setdefault(minute, Counter())[field] += count
            oldest = time.time() // 60 - keep_minutes
            for minute in [m for m in store.stats if m < oldest]:
                del store.stats[minute]

    def stats(self, first_minute: int, last_minute: int) -> dict[int, dict[str, int]]:
        with self._store.cond:
            return {
                minute: dict(counts)
                for minute, counts in sorted(self._store.stats.items())
                if first_minute <= minute <= last_minute
            }

    def inspect(self, task_id: str) -> TaskRecord | None:
        store = self._store
        with store.cond:
            record = self._known(task_id, time.monotonic())
            filed = store.failed.get(task_id)
            entry = None if filed is None else filed.entry
            if record is None:
                return None if entry is None else TaskRecord(status="completed", filed=entry)
            return TaskRecord(
                status=str(record.status), message=record.message, attempt=record.attempt,
                started_ms=record.started_ms, worker=record.worker, outcome=record.result,
                finished_ms=record.finished_ms,
                dependants=tuple(record.dependants), filed=entry,
            )  # fmt: skip

    def next_in_line(self) -> tuple[str, bytes] | None:
        store = self._store
        with store.cond:
            store.promote_due(time.monotonic())
            for task_id in store.queue:
                record = store.records.get(task_id)
                if record is not None and record.status is TaskStatus.ENQUEUED:
                    return task_id, envelope_line(record.message)
            return None

    def size(self) -> int:
        with self._store.cond:
            return len(self._store.not_started())

    def counts(self) -> dict[TaskStatus, int]:
        counted = dict.fromkeys(_COUNTED, 0)
        with self._store.cond:
            for record in self._store.records.values():
                if record.status in counted:
                    counted[record.status] += 1
        return counted

    def ping(self) -> bool:
        """Always True: the store is this process's memory."""
        return True

    def discard_pending(self) -> int:
        store = self._store
        with store.cond:
            waiting = store.not_started()
            store.drop(list(waiting))
            store.queue.clear()
            store.delayed.clear()
            return len(waiting)

    def get_arguments(self, task_id: str) -> dict[str, bytes]:
        with self._store.cond:
            record = self._store.records.get(task_id)
            return {} if record is None else dict(record.arguments)

    def set_task_timeout(self, task_id: str, timeout: float, lease: str | None = None) -> bool:
        """The manual's name for :meth:`renew_lease`."""
        return self.renew_lease(task_id, timeout, lease)

    def renew_lease(self, task_id: str, timeout: float, lease: str | None = None) -> bool:
        store = self._store
        with store.cond:
            record = store.records.get(task_id)
            if record is None or not record.holds(lease):
                return False
            store.track_lease(task_id, record, time.monotonic() + timeout)
            return True

    def get_status(self, task_id: str) -> TaskStatus | None:
        with self._store.cond:
            now = time.monotonic()
            record = self._known(task_id, now)
            if record is None:
                return None
            return TaskStatus.LAPSED if record.lapsed(now) else record.status

    def set_result(
        self,
        task_id: str,
        message: bytes,
        timeout: float,
        lease: str | None = None,
        failure: FailureNote | None = None,
    ) -> bool:
        store = self._store
        with store.cond:
            now = time.monotonic()
            record = self._known(task_id, now)
            if record is None or record.status is TaskStatus.COMPLETED:
                return False
            if lease is not None and not record.holds(lease):
                return False
            sent, handed = record.message, []
            if not record.keep_result:
                del store.records[task_id]
            else:
                record.status = TaskStatus.COMPLETED
                record.result, record.arguments = message, {}
                record.finished_ms = time.time_ns() // 1_000_000
                if len(record.message) > RUN_RECORD_MESSAGE:  # as the Redis backend keeps it
                    record.message = envelope_line(record.message) + b"\n"
                store.keep_result_until(record, now + timeout)
                for dependant_id in record.dependants:
                    dependant = store.records.get(dependant_id)
                    if dependant is None or dependant.status is not TaskStatus.PENDING:
                        continue
                    dependant.arguments[task_id] = message
                    dependant.waiting_on.discard(task_id)
                    handed.append(dependant_id)
                    if not dependant.waiting_on:
                        store.schedule(dependant_id, dependant, 0, now)
                record.dependants = []
            if failure is not None:
                self._file(task_id, sent, record.attempt, failure, record, tuple(handed))
            store.tell(task_id)
            return True

    def _file(
        self,
        task_id: str,
        message: bytes,
        attempt: int,
        note: FailureNote,
        record: _Record | None,
        dependants: tuple[str, ...] = (),
    ) -> None:
        """File a failure in the registry, the store's lock held (``record``: the task's,
        None for a task the store forgot when it was taken)."""
        now_ms = time.time_ns() // 1_000_000
        entry = FiledFailure(task_id, note.status, note.error, attempt, now_ms, message, dependants)
        keep, track = (False, False) if record is None else (record.keep_result, record.track)
        lapses = now_ms + round(note.keep_for * 1000)
        self._store.file_failure(_Filed(entry, keep, track, lapses), note.limit)

    def file_failure(self, task_id: str, message: bytes, attempt: int, note: FailureNote) -> None:
        with self._store.cond:
            self._file(task_id, message, attempt, note, None)

    def failed_tasks(self, limit: int) -> list[FiledFailure]:
        store = self._store
        with store.cond:
            store.drop_lapsed_failures(time.time_ns() // 1_000_000)
            return [filed.entry for filed in reversed(store.failed.values())][:limit]

    def discard_failed(self, task_ids: Sequence[str] | None) -> list[str]:
        store = self._store
        with store.cond:
            asked = list(store.failed) if task_ids is None else list(dict.fromkeys(task_ids))
            return [i for i in asked if store.failed.pop(i, None) is not None]

    def retry_failed(self, task_ids: Sequence[str] | None) -> list[tuple[str, RetryResult]]:
        store = self._store
        with store.cond:
            now = time.monotonic()
            store.drop_lapsed_failures(time.time_ns() // 1_000_000)
            order = {task_id: n for n, task_id in enumerate(store.failed)}
            asked = list(store.failed) if task_ids is None else list(dict.fromkeys(task_ids))
            work = sorted(asked, key=lambda i: order.get(i, -1))
            done: dict[str, RetryResult] = {}
            for task_id in work:  # grows with the dependants retried along
                if task_id not in done:
                    done[task_id] = self._retry_one(task_id, now, work)
            store.retimed()
            return list(done.items())

    def _retry_one(self, task_id: str, now: float, work: list[str]) -> RetryResult:
        """Store one failed task again, the store's lock held; append to ``work`` the
        registry's dependants that failed with it."""
        store = self._store
        filed = store.failed.get(task_id)
        if filed is None:
            return RetryResult.UNKNOWN
        old = self._known(task_id, now)
        if old is not None and old.status is not TaskStatus.COMPLETED:
            return RetryResult.BUSY
        entry = filed.entry
        refs = envelope_refs(entry.message)
        store.records.pop(task_id, None)  # its stored failure, which the new outcome replaces
        if refs:
            stored = self._defer(task_id, entry.message, refs, filed.keep_result, now)
        else:
            self._enqueue(task_id, entry.message, filed.keep_result, filed.track, 0, now)
            stored = DeferResult.STORED
        if stored is not DeferResult.STORED:
            if old is not None:
                store.records[task_id] = old
            return RetryResult.MISSING_ARGUMENT
        del store.failed[task_id]
        record = store.records[task_id]
        record.attempt = entry.attempt
        for dependant_id in entry.dependants:
            dependant = store.records.get(dependant_id)
            if (
                dependant is not None
                and dependant.status in (TaskStatus.PENDING, TaskStatus.ENQUEUED)
                and task_id in dependant.arguments
            ):
                del dependant.arguments[task_id]
                dependant.status = TaskStatus.PENDING
                dependant.waiting_on.add(task_id)
                record.dependants.append(dependant_id)
            elif dependant_id in store.failed:
                work.append(dependant_id)
        return RetryResult.RETRIED

    def set_result_and_get(
        self, task_id: str, message: bytes, timeout: float, lease: str, wait: float = 0.0
    ) -> tuple[bool, Taken | None]:
        """In memory a call costs no round trip: just the two calls."""
        return self.set_result(task_id, message, timeout, lease), self.get(wait)

    def retry_task(self, task_id: str, lease: str, delay: float) -> bool:
        store = self._store
        with store.cond:
            record = store.records.get(task_id)
            if record is None or not record.holds(lease):
                return False
            record.lease_deadline = math.inf
            store.schedule(task_id, record, delay, time.monotonic())
            return True

    def reclaim(self, limit: int) -> list[Taken]:
        store = self._store
        with store.cond:
            now = time.monotonic()
            lapsed = store.lapsed(now, limit)
            return [self._lease(task_id, store.records[task_id], now) for task_id in lapsed]

    def reclaim_task(self, task_id: str) -> Taken | None:
        store = self._store
        with store.cond:
            now = time.monotonic()
            record = store.records.get(task_id)
            if record is None or not record.lapsed(now):
                return None
            return self._lease(task_id, record, now)

    def pop_result(self, task_id: str, timeout: float | None) -> bytes | TaskStatus | None:
        store = self._store
        deadline = Deadline(timeout)
        with store.cond:
            while True:
                now = time.monotonic()
                outcome = self._take_outcome(task_id, now)
                if outcome is not None:
                    return outcome
                if deadline.passed(now):
                    return None
                _wait(store.outcomes, store, now, deadline)

    def pop_results(
        self, task_ids: Sequence[str], timeout: float | None
    ) -> dict[str, bytes | TaskStatus]:
        store = self._store
        deadline = Deadline(timeout)
        found: dict[str, bytes | TaskStatus] = {}
        missing = list(dict.fromkeys(task_ids))
        lapsed = False
        with store.cond:
            while True:
                now = time.monotonic()
                waiting: list[str] = []
                for task_id in missing:
                    outcome = self._take_outcome(task_id, now)
                    if outcome is None:
                        waiting.append(task_id)
                    else:
                        found[task_id] = outcome
                        lapsed = lapsed or outcome is TaskStatus.LAPSED
                missing = waiting
                if not missing or lapsed or deadline.passed(now):
                    return found
                _wait(store.outcomes, store, now, deadline)

    def _take_outcome(self, task_id: str, now: float) -> bytes | TaskStatus | None:
        """Take the task's result if it is there; EXPIRED or LAPSED; None while it is
        still to come. The store's lock held."""
        record = self._known(task_id, now)
        if record is None:
            return TaskStatus.EXPIRED
        if record.status is TaskStatus.COMPLETED and record.result is not None:
            del self._store.records[task_id]
            return record.result
        if record.lapsed(now):
            return TaskStatus.LAPSED
        return None

    @contextmanager
    def watching(self, task_id: str, told: Callable[[], None]) -> Iterator[None]:
        """Have ``told()`` called, under the store's lock, each time ``task_id``'s
        outcome is stored or the task goes (for an async wait: it must be quick)."""
        store = self._store
        with store.cond:
            store.watchers.setdefault(task_id, set()).add(told)
        try:
            yield
        finally:
            with store.cond:
                watchers = store.watchers.get(task_id)
                if watchers is not None:
                    watchers.discard(told)
                    if not watchers:
                        del store.watchers[task_id]

    def next_change_in(self) -> float | None:
        """Seconds until the store's next timed change (a delay due, a lease
        lapsing, a result expiring); None when none is planned."""
        with self._store.cond:
            wake = self._store.next_wake()
        return None if wake == math.inf else max(0.0, wake - time.monotonic())

    def interrupt_waits(self) -> None:
        with self._store.cond:
            self._interrupts += 1
            self._store.cond.notify_all()

    def register_schedules(self, schedules: Sequence[tuple[str, ScheduleState]]) -> None:
        with self._store.cond:
            known = self._store.schedules
            for name, state in schedules:
                found = known.get(name)
                known[name] = (
                    state if found is None else attrs.evolve(found, definition=state.definition)
                )

    def schedule_states(
        self, alive_until_ms: int | None = None
    ) -> tuple[dict[str, ScheduleState], int]:
        store = self._store
        with store.cond:
            alive = store.schedulers_alive_until
            if alive_until_ms is not None:
                store.schedulers_alive_until = max(alive, alive_until_ms)
            return dict(store.schedules), alive

    def fire_schedule(
        self, name: str, fire_ms: int, next_ms: int, task: NewTask | None, *, skip_running: bool
    ) -> FireResult:
        store = self._store
        with store.cond:
            now = time.monotonic()
            state = store.schedules.get(name)
            if state is None or state.last_ms >= fire_ms:
                return FireResult.DONE
            previous = self._known(state.task_id, now) if state.task_id else None
            unfinished = previous is not None and previous.status in _UNFINISHED
            sent = None if skip_running and unfinished else task
            store.schedules[name] = attrs.evolve(
                state,
                last_ms=fire_ms,
                next_ms=next_ms,
                task_id=state.task_id if sent is None else sent.task_id,
            )
            if sent is None:
                return FireResult.SKIPPED
            if not self._enqueue(sent.task_id, sent.message, sent.keep_result, sent.track, 0, now):
                return FireResult.DONE  # a task of that id exists: sent for this time already
            return FireResult.FIRED

    def announce_pool(self, pool_id: str, record: bytes, ttl: float) -> None:
        with self._store.cond:
            if ttl > 0:
                self._store.pools[pool_id] = (record, time.monotonic() + ttl)
            else:
                self._store.pools.pop(pool_id, None)

    def live_pools(self) -> dict[str, bytes]:
        store = self._store
        with store.cond:
            now = time.monotonic()
            for lapsed in [pool for pool, (_, until) in store.pools.items() if until <= now]:
                del store.pools[lapsed]
            return {pool: record for pool, (record, _) in store.pools.items()}

    def queue_names(self) -> list[str]:
        """The queues of this URL in this process that hold tasks or results."""
        with _stores_lock:
            stores = [(name, store) for (url, name), store in _stores.items() if url == self._url]
        return sorted(name for name, store in stores if store.records)

    def close(self) -> None:
        """Nothing to release: the store lives as long as the process."""

    def __repr__(self) -> str:
        return f"<memory TaskQueue {self._url} [{self._name}]>"


class AsyncTaskQueue:
    """The memory backend of ``worq.aio`` queues; see :class:`worq.typing.AsyncTaskQueue`.

    The store is this process's (see :class:`TaskQueue`), shared with every
    sync client and pool on the same URL and queue. Its calls take a lock
    for microseconds and never wait, so they run on the event loop; a wait
    for a result sleeps on an ``asyncio.Event`` that the store sets when the
    outcome is stored, or at the store's next timed change.
    """

    def __init__(self, url: str = "memory://", name: str = DEFAULT) -> None:
        self.sync = TaskQueue(url, name)
        """The store's sync client, which this one wraps."""

    @property
    def url(self) -> str:
        return self.sync.url

    @property
    def name(self) -> str:
        return self.sync.name

    async def enqueue_task(
        self, task_id: str, message: bytes, *, keep_result: bool, track: bool, delay: float = 0
    ) -> bool:
        return self.sync.enqueue_task(
            task_id, message, keep_result=keep_result, track=track, delay=delay
        )

    async def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult:
        return self.sync.defer_task(task_id, message, argument_ids, keep_result=keep_result)

    async def enqueue_tasks(self, tasks: Sequence[NewTask]) -> list[DeferResult]:
        return self.sync.enqueue_tasks(tasks)

    async def get_status(self, task_id: str) -> TaskStatus | None:
        return self.sync.get_status(task_id)

    async def pop_result(self, task_id: str, timeout: float | None) -> bytes | TaskStatus | None:
        loop = asyncio.get_running_loop()
        told = asyncio.Event()
        deadline = Deadline(timeout)

        def tell() -> None:  # called under the store's lock, in any thread
            loop.call_soon_threadsafe(told.set)

        with self.sync.watching(task_id, tell):
            while True:
                outcome = self.sync.pop_result(task_id, 0)
                now = time.monotonic()
                if outcome is not None or deadline.passed(now):
                    return outcome
                planned = (deadline.remaining(now), self.sync.next_change_in())
                waits = [seconds for seconds in planned if seconds is not None]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(told.wait(), min(waits) if waits else None)
                told.clear()

    async def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"<memory AsyncTaskQueue {self.sync.url} [{self.name}]>"
