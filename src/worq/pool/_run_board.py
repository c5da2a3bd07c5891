"""Where a process-pool worker posts the task it runs, for its pool to read when it needs to.

A worker that takes its own tasks (Redis) must let its pool know which task
it runs, so that the pool can fail or retry that task at once when the
worker dies in it. A pipe message before and after every run did that, but
woke a thread of the pool process twice per task: about 100 µs of the pool
process's CPU per task, on machines where every process shares few cores.
The board is a small block of shared memory instead: the worker writes the
task it starts and counts the runs it finished; the pool reads it only when
the worker died and when its heartbeat reports what the pool is doing.

Layout (little-endian): ``seq`` (u64), ``done`` (u64), ``running`` (u8),
``attempt`` (u32), then the lengths (u32) of the task id (UTF-8), its lease
and its envelope (as the wire encodes it: a JSON line, read back by
:func:`~worq._wire.decode_envelope`; pickling the attrs envelope instead
cost several times as much), then those three. ``seq`` is odd while the
worker writes (a sequence lock), so that a reader never takes half of one
post and half of the next.
"""

from __future__ import annotations

import multiprocessing.context
import struct
from typing import Any

import attrs

from worq._wire import decode_envelope, join_task
from worq.models import Envelope

__all__ = ["BOARD_SIZE", "Posted", "RunBoard"]

BOARD_SIZE = 64 * 1024
"""Bytes of shared memory per worker; a task whose envelope does not fit is announced
by a pipe message instead (:meth:`RunBoard.post` says so)."""

_HEADER = struct.Struct("<QQBIIII")
_SEQ = struct.Struct("<Q")
_LIVE_READ_TRIES = 1000
"""Tries of a read while the worker writes before it gives up (it never waits)."""


@attrs.frozen
class Posted:
    """What a board says.

    Attributes:
        done: Runs the worker finished.
        task_id: The task it runs now, or None.
        task: That task's envelope, when it was posted whole.
    """

    done: int
    task_id: str | None
    task: Envelope | None


class RunBoard:
    """One worker's board, in memory shared by the worker and its pool (see the module).

    Made by the pool, which hands :attr:`shared` to the worker it spawns; the
    worker wraps the same memory in a RunBoard of its own.

    Args:
        shared: The shared memory.
        queue: The queue the worker takes its tasks from.
    """

    def __init__(self, shared: Any, queue: str) -> None:
        self.shared = shared
        """The shared memory (a ``multiprocessing`` RawArray), as passed to a worker."""
        self._queue = queue
        self._view = memoryview(shared).cast("B")
        self._seq = 0

    @classmethod
    def allocate(cls, context: multiprocessing.context.BaseContext, queue: str) -> RunBoard:
        """A zeroed board in memory that processes of ``context`` can share."""
        return cls(context.RawArray("B", BOARD_SIZE), queue)

    def post(self, task: Envelope) -> bool:
        """Say that ``task`` runs now (the worker, before it runs it).

        Returns:
            False when its envelope does not fit: only its id is posted, and
            the pool must be sent the envelope.
        """
        ident, lease = task.id.encode(), task.lease.encode()
        envelope = join_task(task, b"")
        if _HEADER.size + len(ident) + len(lease) + len(envelope) > len(self._view):
            lease = envelope = b""
        ident = ident[: len(self._view) - _HEADER.size]
        self._write(1, task.attempt, ident, lease, envelope, 0)
        return bool(envelope)

    def finish(self) -> None:
        """Say that the posted run ended (the worker, once its outcome is recorded)."""
        self._write(0, 0, b"", b"", b"", 1)

    def _write(
        self, running: int, attempt: int, ident: bytes, lease: bytes, envelope: bytes, ended: int
    ) -> None:
        view, seq = self._view, self._seq
        done = _HEADER.unpack_from(view)[1] + ended
        _SEQ.pack_into(view, 0, seq + 1)
        at = _HEADER.size
        for field in (ident, lease, envelope):
            view[at : at + len(field)] = field
            at += len(field)
        _HEADER.pack_into(
            view, 0, seq + 1, done, running, attempt, len(ident), len(lease), len(envelope)
        )
        self._seq = seq + 2
        _SEQ.pack_into(view, 0, self._seq)

    def read(self, settled: bool = False) -> Posted:
        """What the board says now (the pool).

        Args:
            settled: The worker is gone, so nothing writes: a post it died
                in the middle of is read as no task (its lease lapses and a
                reaper settles it, as for a task taken and never posted).
                Without, a read that keeps meeting the worker mid-write says
                no task rather than wait for it.
        """
        view = self._view
        for _ in range(1 if settled else _LIVE_READ_TRIES):
            seq, done, running, attempt, *lengths = _HEADER.unpack_from(view)
            if seq % 2:
                continue
            fields, at = [], _HEADER.size
            for length in lengths if settled else lengths[:1]:
                fields.append(bytes(view[at : at + length]))
                at += length
            if _SEQ.unpack_from(view)[0] != seq:
                continue
            if not running:
                return Posted(done, None, None)
            task_id = fields[0].decode(errors="replace")
            task = self._task(task_id, attempt, fields[1], fields[2]) if settled else None
            return Posted(done, task_id, task)
        return Posted(_HEADER.unpack_from(view)[1], None, None)

    def _task(self, task_id: str, attempt: int, lease: bytes, line: bytes) -> Envelope | None:
        """The posted envelope, with the run's attempt and lease; None when none was posted."""
        if not line:
            return None
        envelope, _ = decode_envelope(line, task_id, self._queue)
        return attrs.evolve(envelope, attempt=attempt, lease=lease.decode())

    def clear(self) -> None:
        """Zero the board for the next worker (the pool, once the last one is gone)."""
        self._view[: _HEADER.size] = bytes(_HEADER.size)
        self._seq = 0
