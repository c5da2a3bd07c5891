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
``id_len`` (u32), ``envelope_len`` (u32), then the task id (UTF-8) and the
pickled envelope. ``seq`` is odd while the worker writes (a sequence lock),
so that a reader never takes half of one post and half of the next.
"""

from __future__ import annotations

import multiprocessing.context
import pickle
import struct
from typing import Any

import attrs

from worq.models import Envelope

__all__ = ["BOARD_SIZE", "Posted", "RunBoard"]

BOARD_SIZE = 64 * 1024
"""Bytes of shared memory per worker; a task whose envelope does not fit is announced
by a pipe message instead (:meth:`RunBoard.post` says so)."""

_HEADER = struct.Struct("<QQBII")
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
    """

    def __init__(self, shared: Any) -> None:
        self.shared = shared
        """The shared memory (a ``multiprocessing`` RawArray), as passed to a worker."""
        self._view = memoryview(shared).cast("B")
        self._seq = 0

    @classmethod
    def allocate(cls, context: multiprocessing.context.BaseContext) -> RunBoard:
        """A zeroed board in memory that processes of ``context`` can share."""
        return cls(context.RawArray("B", BOARD_SIZE))

    def post(self, task: Envelope) -> bool:
        """Say that ``task`` runs now (the worker, before it runs it).

        Returns:
            False when its envelope does not fit: only its id is posted, and
            the pool must be sent the envelope.
        """
        ident = task.id.encode()
        pickled = pickle.dumps(task, pickle.HIGHEST_PROTOCOL)
        if _HEADER.size + len(ident) + len(pickled) > len(self._view):
            pickled = b""
        ident = ident[: len(self._view) - _HEADER.size]
        self._write(1, ident, pickled, 0)
        return bool(pickled)

    def finish(self) -> None:
        """Say that the posted run ended (the worker, once its outcome is recorded)."""
        self._write(0, b"", b"", 1)

    def _write(self, running: int, ident: bytes, pickled: bytes, finished: int) -> None:
        view, seq = self._view, self._seq
        done = _HEADER.unpack_from(view)[1] + finished
        _SEQ.pack_into(view, 0, seq + 1)
        body = _HEADER.size + len(ident)
        view[_HEADER.size : body] = ident
        view[body : body + len(pickled)] = pickled
        _HEADER.pack_into(view, 0, seq + 1, done, running, len(ident), len(pickled))
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
            seq, done, running, id_len, envelope_len = _HEADER.unpack_from(view)
            if seq % 2:
                continue
            ident = bytes(view[_HEADER.size : _HEADER.size + id_len])
            start = _HEADER.size + id_len
            pickled = bytes(view[start : start + envelope_len]) if settled else b""
            if _SEQ.unpack_from(view)[0] != seq:
                continue
            if not running:
                return Posted(done, None, None)
            task = pickle.loads(pickled) if pickled else None
            return Posted(done, ident.decode(errors="replace"), task)
        return Posted(_HEADER.unpack_from(view)[1], None, None)

    def clear(self) -> None:
        """Zero the board for the next worker (the pool, once the last one is gone)."""
        self._view[: _HEADER.size] = bytes(_HEADER.size)
        self._seq = 0
