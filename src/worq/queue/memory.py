"""In-memory task queue and result store (process local).

Every :class:`TaskQueue` made from the same URL and queue name in one process
shares one store, so a worker's broker and a client's queue built separately
(as WorQ's examples do) see the same tasks. Waits block on a condition
variable; nothing polls.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence

import attrs

from worq.const import DEFAULT, TaskStatus
from worq.typing import DeferResult

__all__ = ["TaskQueue"]


@attrs.define
class _Record:
    """What the store knows of one task, from enqueue until its result is taken."""

    status: TaskStatus
    keep_result: bool
    message: bytes | None = None
    """The message of a pending task, queued once its arguments are in."""
    result: bytes | None = None
    expires_at: float = math.inf
    deferred: bool = False
    """Its arguments are handed over by other tasks (see ``get_arguments``)."""
    waiting_on: set[str] = attrs.Factory(set)
    arguments: dict[str, bytes] = attrs.Factory(dict)
    dependants: list[str] = attrs.Factory(list)


@attrs.define
class _Store:
    """The state of one memory queue, guarded by ``cond``."""

    cond: threading.Condition = attrs.Factory(threading.Condition)
    queue: deque[tuple[str, bytes]] = attrs.Factory(deque)
    records: dict[str, _Record] = attrs.Factory(dict)
    next_expiry: float = math.inf

    def live(self, task_id: str, now: float) -> _Record | None:
        self.sweep(now)
        return self.records.get(task_id)

    def expire_at(self, record: _Record, when: float) -> None:
        record.expires_at = when
        if when < self.next_expiry:
            self.next_expiry = when
            self.cond.notify_all()  # waiters may be sleeping past the new expiry

    def sweep(self, now: float) -> None:
        """Drop lapsed records; a lapsed task takes the pending tasks waiting on it along."""
        if now < self.next_expiry:
            return
        lapsed = [task_id for task_id, rec in self.records.items() if rec.expires_at <= now]
        for task_id in lapsed:
            self.drop(task_id)
        self.next_expiry = min((rec.expires_at for rec in self.records.values()), default=math.inf)
        if lapsed:
            self.cond.notify_all()

    def drop(self, task_id: str) -> None:
        record = self.records.pop(task_id, None)
        if record is None or record.status is TaskStatus.COMPLETED:
            return
        for dependant in record.dependants:
            self.drop(dependant)


_stores: dict[tuple[str, str], _Store] = {}
_stores_lock = threading.Lock()


def _store_for(url: str, name: str) -> _Store:
    with _stores_lock:
        return _stores.setdefault((url, name), _Store())


class TaskQueue:
    """Simple in-memory task queue; see :class:`worq.typing.TaskQueue`.

    Args:
        url: ``memory://``, optionally with a label (``memory://tests``) that
            separates stores within a process.
        name: Queue name.
        initial_result_timeout: Seconds a taken task's result placeholder lives
            before the first heartbeat must extend it.
    """

    def __init__(
        self, url: str = "memory://", name: str = DEFAULT, initial_result_timeout: float = 60
    ) -> None:
        self._url = url
        self._name = name
        self.initial_result_timeout = initial_result_timeout
        self._store = _store_for(url, name)

    @classmethod
    def factory(
        cls, url: str, name: str = DEFAULT, initial_result_timeout: float = 60
    ) -> TaskQueue:
        """Make a queue (WorQ 1.1 spelling of the constructor)."""
        return cls(url, name, initial_result_timeout)

    @property
    def url(self) -> str:
        return self._url

    @property
    def name(self) -> str:
        return self._name

    def enqueue_task(self, task_id: str, message: bytes, *, keep_result: bool) -> bool:
        store = self._store
        with store.cond:
            if store.live(task_id, time.monotonic()) is not None:
                return False
            store.records[task_id] = _Record(TaskStatus.ENQUEUED, keep_result)
            store.queue.append((task_id, message))
            store.cond.notify_all()
            return True

    def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult:
        store = self._store
        with store.cond:
            now = time.monotonic()
            if store.live(task_id, now) is not None:
                return DeferResult.DUPLICATE
            arguments: list[tuple[str, _Record]] = []
            for arg_id in argument_ids:
                arg = store.records.get(arg_id)
                if arg is None or not arg.keep_result:
                    return DeferResult.MISSING_ARGUMENT
                arguments.append((arg_id, arg))
            record = _Record(TaskStatus.PENDING, keep_result, message=message, deferred=True)
            for arg_id, arg in arguments:
                if arg.status is TaskStatus.COMPLETED and arg.result is not None:
                    record.arguments[arg_id] = arg.result
                else:
                    record.waiting_on.add(arg_id)
                    arg.dependants.append(task_id)
            store.records[task_id] = record
            if not record.waiting_on:
                self._undefer(task_id, record)
            return DeferResult.STORED

    def _undefer(self, task_id: str, record: _Record) -> None:
        store = self._store
        if record.message is None:  # pragma: no cover - pending records always hold one
            return
        record.status = TaskStatus.ENQUEUED
        store.queue.append((task_id, record.message))
        record.message = None
        store.cond.notify_all()

    def get(self, timeout: float | None) -> tuple[str, bytes] | None:
        store = self._store
        deadline = None if timeout is None else time.monotonic() + timeout
        with store.cond:
            while True:
                now = time.monotonic()
                store.sweep(now)
                while store.queue:
                    task_id, message = store.queue.popleft()
                    record = store.records.get(task_id)
                    if record is None or record.status is not TaskStatus.ENQUEUED:
                        continue
                    if record.keep_result or record.deferred:
                        record.status = TaskStatus.PROCESSING
                        store.expire_at(record, now + self.initial_result_timeout)
                    else:
                        del store.records[task_id]
                    return task_id, message
                if deadline is not None and now >= deadline:
                    return None
                store.cond.wait(None if deadline is None else deadline - now)

    def size(self) -> int:
        with self._store.cond:
            return len(self._store.queue)

    def discard_pending(self) -> int:
        store = self._store
        with store.cond:
            count = len(store.queue)
            for task_id, _ in store.queue:
                store.drop(task_id)
            store.queue.clear()
            store.cond.notify_all()
            return count

    def get_arguments(self, task_id: str) -> dict[str, bytes]:
        store = self._store
        with store.cond:
            record = store.records.get(task_id)
            if record is None:
                return {}
            arguments = record.arguments
            if not record.keep_result:
                del store.records[task_id]
            return dict(arguments)

    def set_task_timeout(self, task_id: str, timeout: float) -> None:
        store = self._store
        with store.cond:
            record = store.live(task_id, time.monotonic())
            if record is not None and record.status is TaskStatus.PROCESSING:
                store.expire_at(record, time.monotonic() + timeout)

    def get_status(self, task_id: str) -> TaskStatus | None:
        store = self._store
        with store.cond:
            record = store.live(task_id, time.monotonic())
            return None if record is None else record.status

    def set_result(self, task_id: str, message: bytes, timeout: float) -> None:
        store = self._store
        with store.cond:
            now = time.monotonic()
            record = store.live(task_id, now) or _Record(TaskStatus.COMPLETED, keep_result=True)
            store.records[task_id] = record
            record.status = TaskStatus.COMPLETED
            record.result = message
            record.arguments = {}
            store.expire_at(record, now + timeout)
            for dependant_id in record.dependants:
                dependant = store.records.get(dependant_id)
                if dependant is None or dependant.status is not TaskStatus.PENDING:
                    continue
                dependant.arguments[task_id] = message
                dependant.waiting_on.discard(task_id)
                if not dependant.waiting_on:
                    self._undefer(dependant_id, dependant)
            record.dependants = []
            store.cond.notify_all()

    def pop_result(self, task_id: str, timeout: float | None) -> bytes | TaskStatus | None:
        store = self._store
        deadline = None if timeout is None else time.monotonic() + timeout
        with store.cond:
            while True:
                now = time.monotonic()
                record = store.live(task_id, now)
                if record is None:
                    return TaskStatus.EXPIRED
                if record.status is TaskStatus.COMPLETED and record.result is not None:
                    del store.records[task_id]
                    return record.result
                if deadline is not None and now >= deadline:
                    return None
                wake = min(store.next_expiry, math.inf if deadline is None else deadline)
                store.cond.wait(None if wake == math.inf else wake - now)

    def close(self) -> None:
        """Nothing to release: the store lives as long as the process."""

    def __repr__(self) -> str:
        return f"<memory TaskQueue {self._url} [{self._name}]>"
