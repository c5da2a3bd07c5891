"""A stored task's bytes: a JSON envelope, a newline, then the codec's payload.

::

    {"v":3,"name":"shop.price","options":{...},"refs":["t0"]}
    <payload>

The envelope (:class:`~worq.models.Envelope`) is JSON whatever the serializer:
``"v"`` (this format's version, 3), ``"name"``,
``"options"`` (the :class:`~worq.models.TaskOptions` fields that differ from
their defaults, in worq's JSON value encoding, see :mod:`worq._codec`;
absent when none does) and ``"refs"`` (the ids of the tasks whose results the
backend hands over; absent when there are none), ``"tp"`` (the sender's W3C
traceparent; absent when it traced nothing) and ``"t"`` (when the task was
due, ms since the epoch; absent when its id says so: a UUIDv7 id that worq
made carries the time it was sent, see :mod:`worq._ids`, and most tasks
are due when sent). Leaving defaults out keeps
the common task's message small, which is most of what Redis stores per
pending task. The task's ``id`` and ``queue`` are not written either: the
backend stores the bytes under both and hands them over with the message, as
it does ``attempt`` and ``lease`` (see :class:`~worq.typing.Taken`); spelling
them out again cost Redis about 40 bytes per pending task and pushed the
task's hash out of its compact encoding. orjson never writes a raw newline (one inside a
string is escaped as ``\\n``), so the first ``b"\\n"`` ends the envelope.

The payload (:class:`~worq.models.Payload`) is whatever the broker's codec
writes for the arguments: for JSON ``{"args": [...], "kwargs": {...}}``, plus
``"resolved": {...}`` when the client already held referenced outcomes; for
pickle, a pickled ``(args, kwargs, resolved)`` tuple.

The split is so that whoever needs only the envelope (a pool choosing how to
run a task, a client settling a task whose lease lapsed) reads it cheaply and
safely: :func:`decode_envelope` parses that one line and slices the payload
off unread, so it never unpickles, and an argument of a class this process
lacks cannot stop it. Only the process that runs the task decodes the payload.

Version 2 (worq 0.x before this one) also wrote ``"id"`` and ``"queue"``: it
is still read, those two fields ignored, so that tasks queued by it run after
an upgrade. Version 1 (worq before the split) stored a task as one JSON object or one
pickled message: :func:`decode_envelope` refuses the first as "unsupported
version 1" and hints at pickle for the second. Without a newline the whole
bytes are read as the envelope, so that a message of any other version is
refused naming its version rather than its framing.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from worq._codec import children, decode_error, decode_tree, dump_json, encode_tree, explain
from worq._ids import id_time_ms
from worq.exceptions import SerializationError
from worq.models import DEFAULT_OPTIONS, Envelope, TaskMessage, TaskOptions
from worq.typing import Codec

__all__ = [
    "VERSION",
    "decode_envelope",
    "decode_task",
    "encode_task",
    "envelope_line",
    "envelope_refs",
    "join_task",
]

VERSION = 3
"""The format's version, ``"v"`` in the envelope."""
_READS = (2, VERSION)
"""The versions this worq reads: version 2 differs only by its ignored id and queue."""

_FIELDS: tuple[tuple[str, type], ...] = (
    ("name", str),
    ("options", dict),
    ("refs", list),
)
_OPTIONS = tuple(a.name for a in attrs.fields(TaskOptions))
_ABSENT: dict[str, Any] = {"options": {}, "refs": []}
"""What an envelope without the key means: every option its default, no refs."""
_WITHIN = "in the message envelope, which is JSON whatever the serializer"
_WHAT = "message envelope"
_PICKLED = " (pickle data? the envelope is JSON whatever the serializer; older worq pickled all)"
"""Pickle bytes where an envelope should be are likely a version 1 pickled message."""


def encode_task(codec: Codec, message: TaskMessage) -> bytes:
    """The bytes to store for ``message``: its envelope, a newline, its payload.

    The payload is encoded first, so that an unencodable argument, by far the
    likeliest failure, is the one reported.

    Raises:
        SerializationError: Saying what could not be encoded and where
            (``args[0]``, ``kwargs['x']``, ``resolved[...]``, ``options...``).
    """
    payload = codec.encode_payload(message.payload)
    return b"\n".join((_encode_envelope(message), payload))


def join_task(envelope: Envelope, payload: bytes) -> bytes:
    """The bytes to store for a task whose payload is already encoded (a worker holding
    it undecoded)."""
    return b"\n".join((_encode_envelope(envelope), payload))


def _encode_envelope(envelope: Envelope) -> bytes:
    # No pickle hint: with the pickle serializer the envelope is still JSON.
    return dump_json(envelope, _tree, _roots, within=_WITHIN, suggest_pickle=False)


def _tree(envelope: Envelope) -> dict[str, Any]:
    tree: dict[str, Any] = {"v": VERSION, "name": envelope.name}
    if envelope.options is not DEFAULT_OPTIONS:
        _add_options(tree, envelope.options)
    if envelope.refs:
        tree["refs"] = envelope.refs
    if envelope.trace:
        tree["tp"] = envelope.trace
    if envelope.due_ms is not None and envelope.due_ms != id_time_ms(envelope.id):
        tree["t"] = envelope.due_ms
    return tree


def _add_options(tree: dict[str, Any], given: TaskOptions) -> None:
    """Put the options that differ from their defaults (if any) under ``"options"``."""
    options = {
        name: encode_tree(value)
        for name in _OPTIONS
        if not _is_default(name, value := getattr(given, name))
    }
    if options:
        tree["options"] = options


def _is_default(name: str, value: object) -> bool:
    """Whether an option is its default, of the same type (so it decodes back exactly)."""
    default = getattr(DEFAULT_OPTIONS, name)
    return type(value) is type(default) and value == default


def _roots(envelope: Envelope) -> list[tuple[str, object]]:
    """The envelope's fields with their paths, as an encoding error names them."""
    return [
        ("name", envelope.name),
        *children("options", envelope.options),
        *children("refs", envelope.refs),
    ]


def decode_envelope(data: bytes, task_id: str, queue: str) -> tuple[Envelope, bytes]:
    """The envelope of task ``task_id`` stored on ``queue``, checked, and its payload's bytes.

    The id and queue come from where the bytes were stored, not from them.
    The envelope's ``attempt`` and ``lease`` are the defaults (1 and ""):
    they are not in the bytes. Only the first line is parsed, in place; the
    payload is sliced off as it is.

    Raises:
        SerializationError: Naming what is wrong: not JSON (with a hint for
            pickle bytes, as version 1 wrote with the pickle serializer),
            another version (a version 1 JSON message is one object with
            ``"v": 1``), no newline, a field missing or of the wrong type, a
            bad option.
    """
    end = data.find(b"\n")
    # Without a newline, all of it: a message of another version says which it is.
    line = memoryview(data)[: end if end >= 0 else len(data)]
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        hint = _PICKLED if data[:1] == b"\x80" else ""
        raise decode_error(_WHAT, data, f"not valid JSON: {exc}{hint}") from exc
    if type(obj) is not dict:
        raise decode_error(_WHAT, data, f"not an object but a {type(obj).__name__}")
    if type(obj.get("v")) is not int or obj["v"] not in _READS:
        why = f"unsupported version {obj.get('v')!r} (this worq reads versions 2 and {VERSION})"
        raise decode_error(_WHAT, data, why)
    if end < 0:
        raise decode_error(_WHAT, data, "no newline ends the envelope, so no payload follows")
    for key, kind in _FIELDS:
        value = obj.get(key, _ABSENT.get(key))
        if type(value) is not kind:
            why = f"field {key!r} must be a {kind.__name__}, not {value!r:.40}"
            raise decode_error(_WHAT, data, why)
    try:
        envelope = Envelope(
            id=task_id,
            name=obj["name"],
            queue=queue,
            options=_options(obj),
            refs=tuple(_task_id(r) for r in obj.get("refs", ())),
            trace=trace if type(trace := obj.get("tp", "")) is str else "",
            due_ms=due if type(due := obj.get("t")) is int else id_time_ms(task_id),
        )
    except (SerializationError, TypeError, ValueError) as exc:
        raise decode_error(_WHAT, data, explain(exc)) from exc
    return envelope, data[end + 1 :]


def _options(obj: dict[str, Any]) -> TaskOptions:
    """The envelope's options: the shared defaults when it gives none, as most do."""
    given = obj.get("options")
    if not given:
        return DEFAULT_OPTIONS
    return TaskOptions(**{name: decode_tree(value) for name, value in given.items()})


def decode_task(codec: Codec, data: bytes, task_id: str, queue: str) -> TaskMessage:
    """The whole task: :func:`decode_envelope`, then the payload by ``codec``.

    Raises:
        SerializationError: For a bad envelope, or a payload ``codec`` cannot read.
    """
    envelope, payload = decode_envelope(data, task_id, queue)
    return TaskMessage.join(envelope, codec.decode_payload(payload))


def _task_id(ref: object) -> str:
    if type(ref) is not str:
        raise TypeError(f"refs must hold str task ids, not {ref!r:.40}")
    return ref


def envelope_line(data: bytes) -> bytes:
    """A stored task's envelope, unparsed: its bytes up to the first newline (all of
    them without one)."""
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def envelope_refs(data: bytes) -> list[str]:
    """The ids of the tasks whose results a stored task takes as arguments, read from
    its envelope alone (a backend storing a failed task again needs them); none when
    the envelope cannot be read."""
    try:
        refs = orjson.loads(envelope_line(data)).get("refs", [])
    except (orjson.JSONDecodeError, AttributeError):
        return []
    return [r for r in refs if type(r) is str] if type(refs) is list else []
