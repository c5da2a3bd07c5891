"""Task ids worq makes: UUIDv7 (RFC 9562) in hex, which carry the time they were made;
and the label of the process that takes a task.

A default id is 32 hex digits, like ``uuid4().hex`` before it, but its first
48 bits are the Unix time in milliseconds. The envelope then need not spell
out when the task was sent (see :mod:`worq._wire`, ``"t"``): the id says it,
for free, which keeps a pending task within its Redis memory budget. Ids also
sort by the time they were made, which listings use.

An id the user chose (``Task(..., id=...)``) carries no time; :func:`id_time_ms`
answers None for it, and the envelope carries the time instead.
"""

from __future__ import annotations

import os
import random
import socket
import time

__all__ = ["id_time_ms", "new_task_id", "worker_label"]

_VERSION = 0x7 << 76
_VARIANT = 0x2 << 62
_KEEP = ~((0xF << 76) | (0x3 << 62))
"""Clears the version and variant bits of the random part."""


def new_task_id(now_ms: int | None = None) -> str:
    """A fresh task id: a UUIDv7 made now (or at ``now_ms``), as 32 hex digits.

    Its 74 random bits come from a generator seeded from ``os.urandom`` once
    per process (again in a forked child): an id must be unique, not hard to
    guess, and ``os.urandom`` per id is a system call, several µs on a busy
    virtual machine.
    """
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    value = (ms << 80) | _random.getrandbits(80)
    return f"{(value & _KEEP) | _VERSION | _VARIANT:032x}"


def id_time_ms(task_id: str) -> int | None:
    """When a task id made by :func:`new_task_id` was made (ms since the epoch); None for
    any other id."""
    if len(task_id) != 32 or task_id[12] != "7" or task_id[16] not in "89ab":
        return None
    stamp = task_id[:12]
    if not (stamp.isascii() and stamp.isalnum()):  # what int() would also take: "_", "+", " "
        return None
    try:
        return int(stamp, 16)
    except ValueError:  # letters beyond f
        return None


def _label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_LABEL = _label()


_random = random.Random(os.urandom(32))


def _forked() -> None:
    global _LABEL  # the one label of this process, made again in a forked child
    _LABEL = _label()
    _random.seed(os.urandom(32))  # a child must not draw the ids its parent draws


os.register_at_fork(after_in_child=_forked)


def worker_label() -> str:
    """Who takes a task, as its record shows it: ``host:pid`` of this process (made once
    per process: every task taken asks)."""
    return _LABEL
