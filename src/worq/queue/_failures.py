"""What the Redis backend keeps of finished tasks: failed-task registry entries, and
the record of a run kept beside its result.

An entry is one JSON line, then a newline, then the task's message as it was
sent. The line holds the note the broker gave (``status``, ``error``, see
:class:`~worq.typing.FailureNote`) and what the filing script adds:
``attempt``, ``failed`` (ms since the epoch, the server's clock), ``keep`` and
``track`` (the task's flags, for a retry to store it alike) and ``dependants``.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from worq.typing import FailureNote, FiledFailure, TaskRecord

__all__ = ["encode_note", "read_filed", "read_run"]


def encode_note(note: FailureNote) -> bytes:
    """The JSON object the filing script completes into an entry's line."""
    return orjson.dumps({"status": note.status, "error": note.error})


def read_filed(task_id: str, entry: bytes) -> FiledFailure:
    """An entry read back; one that cannot be read is shown as such, not raised, so that
    one bad entry does not hide the others."""
    line, _, message = entry.partition(b"\n")
    try:
        info: dict[str, Any] = orjson.loads(line)
        return FiledFailure(
            task_id=task_id,
            status=str(info["status"]),
            error=str(info["error"]),
            attempt=int(info["attempt"]),
            failed_ms=int(info["failed"]),
            message=message,
            dependants=tuple(str(d) for d in info.get("dependants") or ()),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        why = f"unreadable failed-task registry entry ({exc}): {entry[:80]!r}"
        return FiledFailure(task_id, "failed", why, 0, 0, message)


def read_run(record: TaskRecord, kept: bytes) -> TaskRecord:
    """``record`` of a finished task completed by its run's record (``run_record`` in
    ``_lib.lua``: a JSON line, a newline, the message); one that cannot be read
    changes nothing."""
    line, _, message = kept.partition(b"\n")
    try:
        run: dict[str, Any] = orjson.loads(line)
        started = run["started"]
        return attrs.evolve(
            record,
            message=message,
            attempt=int(run["attempt"]),
            started_ms=None if started is None else int(started),
            worker=str(run["worker"]),
            finished_ms=int(run["finished"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return record
