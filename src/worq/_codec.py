"""Serializers: task messages and values to bytes and back.

:class:`JsonCodec` (``"json"``, the default) writes orjson bytes and carries only
data: decoding never imports a module and never unpickles, so whoever can write
to the queue cannot make a worker run code it has not already loaded. Accepted
values come back equal and of the same type at every level; a value that could
not is refused with :class:`~worq.exceptions.SerializationError`, not degraded.

:class:`PickleCodec` (``"pickle"``) carries any picklable object, but unpickling
executes code chosen by whoever wrote the bytes: use it only when everyone who
can write to the queue is trusted.

JSON values: str, bool, None, 64-bit ints, finite floats, lists and dicts with
only str keys are themselves; anything else is an object ``{"$w": tag, ...}``::

    tuple, set, frozenset  {"$w": "tuple", "v": [item, ...]}
    other dicts            {"$w": "dict", "v": [[key, value], ...]}  (a non-str or "$w" key)
    int, float             {"$w": "int", "v": "-1f0..."} (hex)  {"$w": "float", "v": "nan"}
    bytes, date, Decimal   {"$w": "bytes", "v": base64}  {"$w": "date", "v": "2024-05-01"}
                           {"$w": "decimal", "v": str(d)} (keeps exponent, -0, NaN, Infinity)
    datetime, time         {"$w": "datetime", "v": isoformat, "z"?: zone key, "n"?: tz name,
                            "o"?: sub-second offset in µs, "f"?: 1 (fold)}
    timedelta, UUID        {"$w": "timedelta", "v": [days, seconds, µs]}  {"$w": "uuid", "v": str}
    TaskFailure            {"$w": "failure", "t": "TaskExpired", "a": [args]}
    ArgumentRef            {"$w": "ref", "id": task_id}
    attrs instance, enum   {"$w": "attrs", "t": "module:QualName", "v": {field: value}}
                           {"$w": "enum", "t": "module:QualName", "v": member.value}

A message is one object ``{"v": 1, "id", "name", "queue", "args": [...],
"kwargs": {...}, "options": {TaskOptions fields}, "refs": [...]}``, plus
``"resolved": {...}`` when the client already held some referenced outcomes.

Only ``datetime.timezone`` and ``zoneinfo.ZoneInfo`` tzinfos are carried (a
ZoneInfo datetime as wall time plus key ``z``). Enum members (IntEnum, StrEnum)
are tagged; other subclasses of supported types (OrderedDict, defaultdict,
numpy.float64, user subclasses of TaskFailure) are refused, as they would come
back as their base type. Lone-surrogate strs are refused (JSON is UTF-8).
"""

from __future__ import annotations

import base64
import enum
import math
import pickle
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs
import cattrs
import orjson

from worq._models import ArgumentRef, TaskMessage, TaskOptions
from worq._structure import is_attrs, make_json_converter
from worq.exceptions import DuplicateTask, SerializationError, TaskExpired, TaskFailure
from worq.typing import Codec

__all__ = ["JsonCodec", "PickleCodec", "make_codec"]

_Hook = Callable[[Any, Any], Any]
_VERSION, _TAG = 1, "$w"
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_MICROSECOND = timedelta(microseconds=1)
_SUPPORTED = "str, int, float, bool, None, list, tuple, dict, set, frozenset, bytes, datetime, "
_SUPPORTED += "date, time, timedelta, Decimal, UUID, enums, attrs classes"
_FAILURES = {c.__name__: c for c in (TaskFailure, TaskExpired, DuplicateTask)}
_FIELDS: tuple[tuple[str, type], ...] = (("id", str), ("name", str), ("queue", str))
_FIELDS += (("args", list), ("kwargs", dict), ("options", dict), ("refs", list))
_OPTIONS = tuple(a.name for a in attrs.fields(TaskOptions))


class _Unencodable(Exception):
    """Raised deep in the encoder; the path is worked out only on the way out."""

    def __init__(self, obj: object, detail: str = "") -> None:
        super().__init__(obj, detail)
        self.obj, self.detail = obj, detail


def _enc(obj: Any) -> Any:
    """A value as a JSON-native tree, tagging what JSON cannot say.

    Dispatch is on the exact type, cheapest cases first, because this runs for
    every argument of every task; a subclass misses the table and is refused
    unless it is an attrs class or an enum, so it is never silently downgraded.
    """
    cls = type(obj)
    if cls is str or cls is bool or obj is None:
        return obj
    if cls is int:
        return obj if _I64_MIN <= obj <= _I64_MAX else {_TAG: "int", "v": format(obj, "x")}
    encoder = _ENCODERS.get(cls)
    if encoder is not None:
        return encoder(obj)
    ref = f"{cls.__module__}:{cls.__qualname__}"
    if attrs.has(cls):
        fields = {a.name: _enc(getattr(obj, a.name)) for a in attrs.fields(cls) if a.init}
        return {_TAG: "attrs", "t": ref, "v": fields}
    if isinstance(obj, enum.Enum):
        return {_TAG: "enum", "t": ref, "v": _enc(obj.value)}
    raise _Unencodable(obj)


def _enc_dict(obj: dict[Any, Any]) -> Any:
    # A "$w" key would read back as a tag: such dicts take the pair-list form too.
    if _TAG not in obj and all(type(k) is str for k in obj):
        return {k: _enc(v) for k, v in obj.items()}
    return {_TAG: "dict", "v": [[_enc(k), _enc(v)] for k, v in obj.items()]}


def _enc_clock(tag: str, obj: datetime | time) -> dict[str, Any]:
    tz = obj.tzinfo
    out: dict[str, Any] = {_TAG: tag, "v": obj.isoformat()}
    if type(tz) is ZoneInfo and tz.key is not None:
        out.update(v=obj.replace(tzinfo=None).isoformat(), z=tz.key)
    elif type(tz) is timezone:
        offset = tz.utcoffset(None)
        if offset.microseconds:  # fromisoformat misreads "+00:00:00.000001" as UTC
            out.update(v=obj.replace(tzinfo=None).isoformat(), o=offset // _MICROSECOND)
        if tz.tzname(None) != timezone(offset).tzname(None):
            out["n"] = tz.tzname(None)
    elif tz is not None:
        detail = f"tzinfo {type(tz).__qualname__!r}: use datetime.timezone or zoneinfo.ZoneInfo"
        raise _Unencodable(obj, detail)
    if obj.fold:
        out["f"] = 1
    return out


def _items(tag: str) -> Callable[[Any], Any]:
    return lambda obj: {_TAG: tag, "v": [_enc(x) for x in obj]}


def _enc_failure(obj: TaskFailure) -> Any:
    return {_TAG: "failure", "t": type(obj).__name__, "a": [_enc(a) for a in obj.args]}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    float: lambda o: o if math.isfinite(o) else {_TAG: "float", "v": repr(o)},
    list: lambda o: [_enc(x) for x in o],
    dict: _enc_dict,
    tuple: _items("tuple"),
    set: _items("set"),
    frozenset: _items("frozenset"),
    bytes: lambda o: {_TAG: "bytes", "v": base64.b64encode(o).decode("ascii")},
    datetime: lambda o: _enc_clock("datetime", o),
    time: lambda o: _enc_clock("time", o),
    date: lambda o: {_TAG: "date", "v": o.isoformat()},
    timedelta: lambda o: {_TAG: "timedelta", "v": [o.days, o.seconds, o.microseconds]},
    Decimal: lambda o: {_TAG: "decimal", "v": str(o)},
    UUID: lambda o: {_TAG: "uuid", "v": str(o)},
    ArgumentRef: lambda o: {_TAG: "ref", "id": o.task_id},
    **dict.fromkeys(_FAILURES.values(), _enc_failure),
}


def _children(path: str, obj: Any) -> Iterator[tuple[str, object]]:
    """What the encoder walks into, in the encoder's order, each with its path."""
    if isinstance(obj, list | tuple):
        yield from ((f"{path}[{i}]", x) for i, x in enumerate(obj))
    elif isinstance(obj, dict):
        for i, (k, v) in enumerate(obj.items()):
            yield from ((f"{path}<key #{i}>", k), (f"{path}[{k!r}]", v))
    elif isinstance(obj, set | frozenset):
        yield from ((f"{path}<item #{i}>", x) for i, x in enumerate(obj))
    elif isinstance(obj, TaskFailure):
        yield from ((f"{path}.args[{i}]", x) for i, x in enumerate(obj.args))
    elif attrs.has(type(obj)):
        fields = attrs.fields(type(obj))
        yield from ((f"{path}.{a.name}", getattr(obj, a.name)) for a in fields if a.init)
    elif isinstance(obj, enum.Enum):
        yield f"{path}.value", obj.value


def _locate(nodes: Iterable[tuple[str, object]], match: Callable[[object], bool]) -> str | None:
    for path, obj in nodes:
        if match(obj):
            return path
        if (found := _locate(_children(path, obj), match)) is not None:
            return found
    return None


def _not_utf8(obj: object) -> bool:
    if isinstance(obj, str):
        try:
            obj.encode()
        except UnicodeEncodeError:
            return True
    return False


def _encode_error(exc: Exception, roots: Iterable[tuple[str, object]]) -> SerializationError:
    """Say what could not be encoded and where; runs only once encoding has failed."""
    if isinstance(exc, _Unencodable):
        path = _locate(roots, lambda x: x is exc.obj)
        what = f"value of type {type(exc.obj).__qualname__!r}"
        why = exc.detail or f"supported: {_SUPPORTED}"
    elif isinstance(exc, RecursionError):
        path, what, why = None, "a value", "nested too deeply or holding a reference cycle"
    elif (path := _locate(roots, _not_utf8)) is not None:
        what, why = "a str holding lone surrogates", "JSON text must be valid UTF-8"
    else:
        what, why = "a value", str(exc)
    where = f"{path}: " if path else ""
    why += "; or use serializer='pickle'"
    return SerializationError(f"{where}cannot encode {what} with the json serializer ({why})")


def _expect(kind: type, value: Any) -> Any:
    if type(value) is not kind:
        raise TypeError(f"expected a {kind.__name__}, got a {type(value).__name__}")
    return value


def _find_class(ref: object) -> Any:
    """Look ``"module:QualName"`` up among loaded modules without running any code.

    Only ``sys.modules`` and ``__dict__`` lookups: no import and no ``getattr``
    (a module ``__getattr__`` may import lazily), so queue bytes cannot load code.
    """
    module_name, _, qualname = _expect(str, ref).partition(":")
    obj = sys.modules.get(module_name)
    for part in qualname.split("."):
        if not isinstance(obj, type | types.ModuleType):
            return None
        obj = obj.__dict__.get(part)
    return obj


def _dec_clock(parse: Callable[[str], Any], node: dict[str, Any]) -> Any:
    value = parse(_expect(str, node["v"]))
    if "z" in node:
        value = value.replace(tzinfo=ZoneInfo(_expect(str, node["z"])))
    if "o" in node:
        value = value.replace(tzinfo=timezone(_expect(int, node["o"]) * _MICROSECOND))
    if "n" in node:
        value = value.replace(tzinfo=timezone(value.utcoffset(), _expect(str, node["n"])))
    return value.replace(fold=1) if node.get("f") == 1 else value


def _make_decoder(converter: cattrs.Converter) -> Callable[[Any], Any]:
    """Build the JSON-tree-to-values function; attrs tags structure with ``converter``."""

    def dec(node: Any) -> Any:
        cls = type(node)
        if cls is list:
            return [dec(x) for x in node]
        if cls is dict:
            return tagged(node) if _TAG in node else {k: dec(v) for k, v in node.items()}
        return node

    def items(node: Any) -> list[Any]:
        return [dec(x) for x in _expect(list, node)]

    def attrs_value(node: dict[str, Any]) -> Any:
        fields = {k: dec(v) for k, v in _expect(dict, node["v"]).items()}
        cls = _find_class(node["t"])  # not loaded: the worker structures the dict later
        return converter.structure(fields, cls) if is_attrs(cls) else fields

    def enum_value(node: dict[str, Any]) -> Any:
        value, cls = dec(node["v"]), _find_class(node["t"])
        return cls(value) if isinstance(cls, enum.EnumMeta) else value

    decoders: dict[str, Callable[[dict[str, Any]], Any]] = {
        "tuple": lambda n: tuple(items(n["v"])),
        "set": lambda n: set(items(n["v"])),
        "frozenset": lambda n: frozenset(items(n["v"])),
        "dict": lambda n: {dec(k): dec(v) for k, v in (_expect(list, p) for p in n["v"])},
        "int": lambda n: int(_expect(str, n["v"]), 16),
        "float": lambda n: float(_expect(str, n["v"])),
        "bytes": lambda n: base64.b64decode(_expect(str, n["v"]), validate=True),
        "datetime": lambda n: _dec_clock(datetime.fromisoformat, n),
        "time": lambda n: _dec_clock(time.fromisoformat, n),
        "date": lambda n: date.fromisoformat(_expect(str, n["v"])),
        "timedelta": lambda n: timedelta(*(_expect(int, x) for x in _expect(list, n["v"]))),
        "decimal": lambda n: Decimal(_expect(str, n["v"])),
        "uuid": lambda n: UUID(_expect(str, n["v"])),
        "failure": lambda n: _FAILURES[_expect(str, n["t"])](*items(n["a"])),
        "ref": lambda n: ArgumentRef(_expect(str, n["id"])),
        "attrs": attrs_value,
        "enum": enum_value,
    }

    def tagged(node: dict[str, Any]) -> Any:
        tag = node[_TAG]
        decoder = decoders.get(tag) if type(tag) is str else None
        if decoder is None:
            raise SerializationError(f"unknown tag {tag!r}")
        try:
            return decoder(node)
        except (SerializationError, RecursionError):
            raise
        except Exception as exc:
            raise SerializationError(f"bad {tag!r} value: {_why(exc)}") from exc

    return dec


def _decode_error(what: str, data: bytes, reason: str) -> SerializationError:
    head = f"{bytes(data[:80])!r}{'...' if len(data) > 80 else ''}"
    return SerializationError(f"cannot decode {what} with the json serializer: {reason} ({head})")


def _str_keyed(field: str, value: Any) -> dict[str, Any]:
    if type(value) is not dict or not all(type(k) is str for k in value):
        raise TypeError(f"{field} must be a dict with str keys")
    return value


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SerializationError) else f"{type(exc).__name__}: {exc}"


def _loads(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        hint = " (pickle data? use one serializer everywhere)" if data[:1] == b"\x80" else ""
        raise _decode_error(what, data, f"not valid JSON: {exc}{hint}") from exc


class JsonCodec:
    """The default codec: orjson bytes that carry data, never code.

    Safe with an untrusted queue: decoding imports nothing and never unpickles.
    Values keep their exact types (the module docstring lists the format);
    anything that would not is refused when encoding, naming its type and path.
    """

    def __init__(self) -> None:
        self._converter = make_json_converter()
        self._decode = _make_decoder(self._converter)

    @property
    def name(self) -> str:
        """``"json"``."""
        return "json"

    def encode_message(self, message: TaskMessage) -> bytes:
        """Encode a message as one JSON object with a format version ``"v"``."""
        m, o = message, message.options
        try:
            tree = {"v": _VERSION, "id": m.id, "name": m.name, "queue": m.queue}
            tree.update(args=[_enc(a) for a in m.args], kwargs=_enc_dict(m.kwargs))
            tree["options"] = {a: _enc(getattr(o, a)) for a in _OPTIONS}
            tree["refs"] = list(m.refs)
            if m.resolved:  # rare: the common message keeps to the documented keys
                tree["resolved"] = _enc_dict(m.resolved)
            return orjson.dumps(tree)
        except (_Unencodable, orjson.JSONEncodeError, RecursionError) as exc:
            names = ("args", "kwargs", "options", "refs", "resolved", "id")
            roots = [(a, getattr(m, a)) for a in names]
            raise _encode_error(exc, roots) from None

    def decode_message(self, data: bytes) -> TaskMessage:
        """Decode and check a message: any malformed part raises SerializationError."""
        obj = _loads(data, "message")
        if type(obj) is not dict:
            raise _decode_error("message", data, f"not an object but a {type(obj).__name__}")
        if type(obj.get("v")) is not int or obj["v"] != _VERSION:
            why = f"unsupported version {obj.get('v')!r} (this worq reads version {_VERSION})"
            raise _decode_error("message", data, why)
        for key, kind in _FIELDS:
            if type(obj.get(key)) is not kind:
                why = f"field {key!r} must be a {kind.__name__}, not {obj.get(key)!r:.40}"
                raise _decode_error("message", data, why)
        try:
            kwargs = _str_keyed("kwargs", self._decode(obj["kwargs"]))
            resolved = _str_keyed("resolved", self._decode(obj.get("resolved", {})))
            return TaskMessage(
                id=obj["id"],
                name=obj["name"],
                queue=obj["queue"],
                args=tuple(self._decode(obj["args"])),
                kwargs=kwargs,
                options=TaskOptions(**{k: self._decode(v) for k, v in obj["options"].items()}),
                refs=tuple(_expect(str, r) for r in obj["refs"]),
                resolved=resolved,
            )
        except (SerializationError, TypeError, ValueError, RecursionError) as exc:
            raise _decode_error("message", data, _why(exc)) from exc

    def encode_value(self, value: object) -> bytes:
        """Encode a result or argument value."""
        try:
            return orjson.dumps(_enc(value))
        except (_Unencodable, orjson.JSONEncodeError, RecursionError) as exc:
            raise _encode_error(exc, [("value", value)]) from None

    def decode_value(self, data: bytes) -> Any:
        """Decode what :meth:`encode_value` wrote."""
        tree = _loads(data, "value")
        try:
            return self._decode(tree)
        except (SerializationError, RecursionError) as exc:
            raise _decode_error("value", data, _why(exc)) from exc

    def structure(self, value: Any, hint: Any) -> Any:
        """Convert a decoded value to a task's annotation, e.g. a dict to an attrs class."""
        try:
            return self._converter.structure(value, hint)
        except Exception as exc:
            why = _why(exc)
            if isinstance(exc, cattrs.BaseValidationError):  # say which item or field
                why = "; ".join(cattrs.transform_error(exc))
            kind = type(value).__qualname__
            raise SerializationError(f"cannot convert a {kind} to {hint!r}: {why}") from exc


class PickleCodec:
    """Pickle bytes: any picklable value, for TRUSTED deployments only.

    Unpickling runs code chosen by whoever wrote the bytes, so anyone who can
    write to the queue (or its Redis server) can run code on every worker.
    """

    @property
    def name(self) -> str:
        """``"pickle"``."""
        return "pickle"

    def encode_message(self, message: TaskMessage) -> bytes:
        """Pickle the message with the highest protocol."""
        return _pickle(message)

    def decode_message(self, data: bytes) -> TaskMessage:
        """Unpickle a message (this runs code from the bytes: trusted queues only)."""
        message = _unpickle(data)
        if not isinstance(message, TaskMessage):
            raise SerializationError(f"expected a pickled TaskMessage, got a {type(message)!r}")
        return message

    def encode_value(self, value: object) -> bytes:
        """Pickle a value with the highest protocol."""
        return _pickle(value)

    def decode_value(self, data: bytes) -> Any:
        """Unpickle a value (this runs code from the bytes: trusted queues only)."""
        return _unpickle(data)

    def structure(self, value: Any, hint: Any) -> Any:
        """Return ``value`` unchanged: unpickling already rebuilt the original objects."""
        return value


def _pickle(value: object) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        kind = type(value).__qualname__
        raise SerializationError(
            f"cannot encode a {kind!r} with the pickle serializer: {exc}"
        ) from exc


def _unpickle(data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}: {bytes(data[:80])!r}"
        raise SerializationError(f"cannot decode with the pickle serializer: {why}") from exc


_CODECS: dict[str, Callable[[], Codec]] = {"json": JsonCodec, "pickle": PickleCodec}


def make_codec(name: str) -> Codec:
    """The codec called ``name``; an unknown name fails at setup, before anything is sent."""
    factory = _CODECS.get(name)
    if factory is None:
        raise ValueError(f"unknown serializer {name!r}: use 'json' (default) or 'pickle'")
    return factory()
