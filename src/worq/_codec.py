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
    TaskFailure            {"$w": "failure", "t": "TaskExpired", "a": [args], "n": [notes]}
    ArgumentRef            {"$w": "ref", "id": task_id}
    attrs instance, enum   {"$w": "attrs", "t": "module:QualName", "v": {field: value}}
                           {"$w": "enum", "t": "module:QualName", "v": member.value}

An attrs instance carries every field, ``init=False`` ones too, and is rebuilt
without calling ``__init__`` (see :func:`_restore`), so converters do not run
twice and nothing falls back to a default; generic classes need nothing more.

A message is one object ``{"v": 1, "id", "name", "queue", "args": [...],
"kwargs": {...}, "options": {TaskOptions fields}, "refs": [...]}``, plus
``"resolved": {...}`` when the client already held some referenced outcomes.

Only ``datetime.timezone`` and ``zoneinfo.ZoneInfo`` tzinfos are carried (a
ZoneInfo datetime as wall time plus key ``z``). Enum members (IntEnum, StrEnum)
are tagged; other subclasses of supported types (OrderedDict, defaultdict,
numpy.float64, user subclasses of TaskFailure) are refused, as they would come
back as their base type. Lone-surrogate strs are refused (JSON is UTF-8), and
so are values nested deeper than :data:`MAX_DEPTH`, both ways.
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
from worq._structure import make_json_converter
from worq.exceptions import DuplicateTask, SerializationError, TaskExpired, TaskFailure
from worq.typing import Codec

__all__ = ["MAX_DEPTH", "JsonCodec", "PickleCodec", "make_codec"]

MAX_DEPTH = 64
"""How deeply a value may nest; each list, tuple, set, frozenset, dict, attrs
instance, enum member and TaskFailure is one level. The bound keeps encoding,
decoding and :mod:`worq._arguments` far below Python's recursion limit (so a
deep value or a reference cycle is refused, never a RecursionError) and the
JSON within orjson's 254 levels (a level takes at most three, a pair-form dict)."""

_VERSION, _TAG = 1, "$w"
_OUTER = -1  # depth of a message's args list and kwargs dict: they hold values, not levels of them
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_MICROSECOND = timedelta(microseconds=1)
_SUPPORTED = "str, int, float, bool, None, list, tuple, dict, set, frozenset, bytes, datetime, "
_SUPPORTED += "date, time, timedelta, Decimal, UUID, enums, attrs classes"
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
_FAILURES = {c.__name__: c for c in (TaskFailure, TaskExpired, DuplicateTask)}
_FIELDS: tuple[tuple[str, type], ...] = (("id", str), ("name", str), ("queue", str))
_FIELDS += (("args", list), ("kwargs", dict), ("options", dict), ("refs", list))
_OPTIONS = tuple(a.name for a in attrs.fields(TaskOptions))


class _Unencodable(Exception):
    """Raised deep in the encoder; the path is worked out only on the way out.

    ``depth`` (how many containers hold ``obj``) tells the occurrence that
    failed from the same object seen higher up.
    """

    def __init__(self, obj: object, depth: int, detail: str = "") -> None:
        super().__init__(obj, depth, detail)
        self.obj, self.depth, self.detail = obj, depth, detail


class _TooDeep(_Unencodable):
    """``obj`` would be one level more than :data:`MAX_DEPTH`."""


def _nest(obj: object, depth: int) -> int:
    """The depth of the items of container ``obj``, which sits at ``depth``."""
    if depth >= MAX_DEPTH:
        raise _TooDeep(obj, depth)
    return depth + 1


def _enc(obj: Any, depth: int) -> Any:
    """A value as a JSON-native tree, tagging what JSON cannot say.

    ``depth`` counts the containers holding ``obj``. Dispatch is on the exact
    type, cheapest cases first, because this runs for every argument of every
    task; a subclass misses the table and is refused unless it is an attrs
    class or an enum, so it is never silently downgraded.
    """
    cls = type(obj)
    if cls is str or cls is bool or obj is None:
        return obj
    if cls is int:
        return obj if _I64_MIN <= obj <= _I64_MAX else {_TAG: "int", "v": format(obj, "x")}
    encoder = _ENCODERS.get(cls)
    if encoder is not None:
        return encoder(obj, depth)
    if attrs.has(cls):
        return _enc_attrs(obj, depth)
    if isinstance(obj, enum.Enum):
        ref = f"{cls.__module__}:{cls.__qualname__}"
        return {_TAG: "enum", "t": ref, "v": _enc(obj.value, _nest(obj, depth))}
    raise _Unencodable(obj, depth)


def _enc_attrs(obj: Any, depth: int) -> Any:
    """Every field, ``init=False`` ones too, so that :func:`_restore` can set them all."""
    inner, cls = _nest(obj, depth), type(obj)
    fields = {}
    for a in attrs.fields(cls):
        try:
            value = getattr(obj, a.name)
        except AttributeError:  # an init=False field without default that was never set
            raise _Unencodable(obj, depth, f"its attrs field {a.name!r} has no value") from None
        fields[a.name] = _enc(value, inner)
    return {_TAG: "attrs", "t": f"{cls.__module__}:{cls.__qualname__}", "v": fields}


def _enc_dict(obj: dict[Any, Any], depth: int) -> Any:
    inner = _nest(obj, depth)
    # A "$w" key would read back as a tag: such dicts take the pair-list form too.
    if _TAG not in obj and all(type(k) is str for k in obj):
        return {k: _enc(v, inner) for k, v in obj.items()}
    return {_TAG: "dict", "v": [[_enc(k, inner), _enc(v, inner)] for k, v in obj.items()]}


def _enc_clock(tag: str, obj: datetime | time, depth: int) -> dict[str, Any]:
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
        raise _Unencodable(obj, depth, detail)
    if obj.fold:
        out["f"] = 1
    return out


def _items(tag: str) -> Callable[[Any, int], Any]:
    def encode(obj: Any, depth: int) -> Any:
        inner = _nest(obj, depth)
        return {_TAG: tag, "v": [_enc(x, inner) for x in obj]}

    return encode


def _enc_list(obj: list[Any], depth: int) -> Any:
    inner = _nest(obj, depth)
    return [_enc(x, inner) for x in obj]


def _enc_failure(obj: TaskFailure, depth: int) -> Any:
    inner = _nest(obj, depth)
    out = {_TAG: "failure", "t": type(obj).__name__, "a": [_enc(a, inner) for a in obj.args]}
    notes = getattr(obj, "__notes__", None)
    if notes:  # hints for the reader (see TaskFailure); they do not take part in equality
        out["n"] = [str(note) for note in notes]
    return out


_ENCODERS: dict[type, Callable[[Any, int], Any]] = {
    float: lambda o, _: o if math.isfinite(o) else {_TAG: "float", "v": repr(o)},
    list: _enc_list,
    dict: _enc_dict,
    tuple: _items("tuple"),
    set: _items("set"),
    frozenset: _items("frozenset"),
    bytes: lambda o, _: {_TAG: "bytes", "v": base64.b64encode(o).decode("ascii")},
    datetime: lambda o, d: _enc_clock("datetime", o, d),
    time: lambda o, d: _enc_clock("time", o, d),
    date: lambda o, _: {_TAG: "date", "v": o.isoformat()},
    timedelta: lambda o, _: {_TAG: "timedelta", "v": [o.days, o.seconds, o.microseconds]},
    Decimal: lambda o, _: {_TAG: "decimal", "v": str(o)},
    UUID: lambda o, _: {_TAG: "uuid", "v": str(o)},
    ArgumentRef: lambda o, _: {_TAG: "ref", "id": o.task_id},
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
        yield from ((f"{path}.{a.name}", getattr(obj, a.name)) for a in attrs.fields(type(obj)))
    elif isinstance(obj, enum.Enum):
        yield f"{path}.value", obj.value


def _locate(
    nodes: Iterable[tuple[str, object]], match: Callable[[object, int], bool], depth: int = 0
) -> str | None:
    """The path of the first node ``match(node, depth)`` accepts, walking as the encoder did.

    It goes no deeper than the encoder can have gone, so cycles end too.
    """
    for path, obj in nodes:
        if match(obj, depth):
            return path
        if depth < MAX_DEPTH:
            found = _locate(_children(path, obj), match, depth + 1)
            if found is not None:
                return found
    return None


def _not_utf8(obj: object, depth: int) -> bool:
    if isinstance(obj, str):
        try:
            obj.encode()
        except UnicodeEncodeError:
            return True
    return False


def _encode_error(exc: Exception, roots: list[tuple[str, object]]) -> SerializationError:
    """Say what could not be encoded and where; runs only once encoding has failed.

    ``roots`` are the top-level values (depth 0). A too-deep value is pointed
    at by its root alone: the full path would be dozens of ``[0]``.
    """
    culprit: object = [value for _, value in roots]
    if isinstance(exc, _Unencodable):
        culprit = exc.obj

        def failed(obj: object, depth: int) -> bool:
            return obj is exc.obj and depth == exc.depth

        if isinstance(exc, _TooDeep):
            path = next((p for p, o in roots if _locate([(p, o)], failed) is not None), None)
            what, why = f"a value {_TOO_DEEP}", "flatten it; a reference cycle nests without end"
        else:
            path = _locate(roots, failed)
            what = f"value of type {type(exc.obj).__qualname__!r}"
            why = exc.detail or f"supported: {_SUPPORTED}"
    elif (path := _locate(roots, _not_utf8)) is not None:
        what, why = "a str holding lone surrogates", "JSON text must be valid UTF-8"
    else:
        what, why = "a value", str(exc)
    where = f"{path}: " if path else ""
    if _picklable(culprit):
        why += "; or use serializer='pickle'"
    return SerializationError(f"{where}cannot encode {what} with the json serializer ({why})")


def _picklable(obj: object) -> bool:
    """Whether pickle could carry ``obj``: only then is it worth suggesting.

    Lambdas, open files, generators, locks and sockets cannot be pickled
    either; pointing a user at pickle for them would send them astray.
    """
    try:
        pickle.dumps(obj)
    except Exception:  # pickle raises many kinds (PicklingError, TypeError, RecursionError...)
        return False
    return True


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


def _restore(cls: Any, values: dict[str, Any]) -> Any:
    """The attrs instance that was encoded, its fields set back as pickle and copy do.

    ``__init__`` is not called: it would run converters again on the values
    they produced ("hi!" would become "hi!!"), give ``init=False`` fields their
    defaults, and need a type for each ``TypeVar`` of a generic class. Neither
    is ``__attrs_post_init__``: what it derived travels as fields. A slotted
    class (attrs' default) takes the fields through the ``__setstate__`` attrs
    wrote for pickle, which also clears a ``cache_hash`` cache; other classes
    get them set one by one, as a frozen class's ``__init__`` does. Validators
    do run, so queue bytes cannot build an instance they would reject.
    """
    fields = attrs.fields(cls)
    names = [a.name for a in fields]
    if values.keys() != set(names):
        raise TypeError(f"{cls.__qualname__} has the fields {names}, not {list(values)}")
    instance = cls.__new__(cls)  # cls's own __new__: an attrs exception needs BaseException's
    setstate = cls.__dict__.get("__setstate__") if "__slots__" in cls.__dict__ else None
    if setstate is not None:
        setstate(instance, values)
    else:
        for name in names:
            object.__setattr__(instance, name, values[name])
    if isinstance(instance, BaseException):  # attrs' __init__ gives it its init fields as args
        BaseException.__init__(instance, *(values[a.name] for a in fields if a.init))
    attrs.validate(instance)
    return instance


def _dec_clock(parse: Callable[[str], Any], node: dict[str, Any]) -> Any:
    value = parse(_expect(str, node["v"]))
    if "z" in node:
        value = value.replace(tzinfo=ZoneInfo(_expect(str, node["z"])))
    if "o" in node:
        value = value.replace(tzinfo=timezone(_expect(int, node["o"]) * _MICROSECOND))
    if "n" in node:
        value = value.replace(tzinfo=timezone(value.utcoffset(), _expect(str, node["n"])))
    return value.replace(fold=1) if node.get("f") == 1 else value


def _dec_failure(node: dict[str, Any], depth: int) -> TaskFailure:
    failure = _FAILURES[_expect(str, node["t"])](*_dec_items(node["a"], depth))
    for note in _expect(list, node.get("n", [])):
        failure.add_note(_expect(str, note))
    return failure


def _inside(depth: int) -> int:
    """The depth of the items of a container at ``depth``: the decoder's :func:`_nest`."""
    if depth >= MAX_DEPTH:
        raise SerializationError(_TOO_DEEP)
    return depth + 1


def _dec(node: Any, depth: int) -> Any:
    """A JSON tree back as values; ``depth`` counts the containers holding ``node``."""
    cls = type(node)
    if cls is list:
        inner = _inside(depth)
        return [_dec(x, inner) for x in node]
    if cls is dict:
        if _TAG in node:
            return _tagged(node, depth)
        inner = _inside(depth)
        return {k: _dec(v, inner) for k, v in node.items()}
    return node


def _tagged(node: dict[str, Any], depth: int) -> Any:
    tag = node[_TAG]
    decoder = _DECODERS.get(tag) if type(tag) is str else None
    if decoder is None:
        raise SerializationError(f"unknown tag {tag!r}")
    try:
        return decoder(node, depth)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"bad {tag!r} value: {_why(exc)}") from exc


def _dec_items(node: Any, depth: int) -> list[Any]:
    """The items of a tagged container at ``depth``."""
    inner = _inside(depth)
    return [_dec(x, inner) for x in _expect(list, node)]


def _dec_dict(node: dict[str, Any], depth: int) -> dict[Any, Any]:
    inner = _inside(depth)
    pairs = (_expect(list, p) for p in node["v"])
    return {_dec(k, inner): _dec(v, inner) for k, v in pairs}


def _dec_attrs(node: dict[str, Any], depth: int) -> Any:
    inner = _inside(depth)
    values = {k: _dec(v, inner) for k, v in _expect(dict, node["v"]).items()}
    cls = _find_class(node["t"])  # not loaded: the worker structures the dict later
    return _restore(cls, values) if isinstance(cls, type) and attrs.has(cls) else values


def _dec_enum(node: dict[str, Any], depth: int) -> Any:
    value, cls = _dec(node["v"], _inside(depth)), _find_class(node["t"])
    return cls(value) if isinstance(cls, enum.EnumMeta) else value


_DECODERS: dict[str, Callable[[dict[str, Any], int], Any]] = {
    "tuple": lambda n, d: tuple(_dec_items(n["v"], d)),
    "set": lambda n, d: set(_dec_items(n["v"], d)),
    "frozenset": lambda n, d: frozenset(_dec_items(n["v"], d)),
    "dict": _dec_dict,
    "int": lambda n, _: int(_expect(str, n["v"]), 16),
    "float": lambda n, _: float(_expect(str, n["v"])),
    "bytes": lambda n, _: base64.b64decode(_expect(str, n["v"]), validate=True),
    "datetime": lambda n, _: _dec_clock(datetime.fromisoformat, n),
    "time": lambda n, _: _dec_clock(time.fromisoformat, n),
    "date": lambda n, _: date.fromisoformat(_expect(str, n["v"])),
    "timedelta": lambda n, _: timedelta(*(_expect(int, x) for x in _expect(list, n["v"]))),
    "decimal": lambda n, _: Decimal(_expect(str, n["v"])),
    "uuid": lambda n, _: UUID(_expect(str, n["v"])),
    "failure": lambda n, d: _dec_failure(n, d),
    "ref": lambda n, _: ArgumentRef(_expect(str, n["id"])),
    "attrs": _dec_attrs,
    "enum": _dec_enum,
}


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

    @property
    def name(self) -> str:
        """``"json"``."""
        return "json"

    def encode_message(self, message: TaskMessage) -> bytes:
        """Encode a message as one JSON object with a format version ``"v"``."""
        m, o = message, message.options
        try:
            tree = {"v": _VERSION, "id": m.id, "name": m.name, "queue": m.queue}
            tree.update(args=[_enc(a, 0) for a in m.args], kwargs=_enc_dict(m.kwargs, _OUTER))
            tree["options"] = {a: _enc(getattr(o, a), 0) for a in _OPTIONS}
            tree["refs"] = list(m.refs)
            if m.resolved:  # rare: the common message keeps to the documented keys
                tree["resolved"] = _enc_dict(m.resolved, _OUTER)
            return orjson.dumps(tree)
        except (_Unencodable, orjson.JSONEncodeError) as exc:
            roots = [*_children("args", m.args), *_children("kwargs", m.kwargs)]
            roots += [*_children("options", o), *_children("refs", m.refs)]
            roots += [*_children("resolved", m.resolved), ("id", m.id)]
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
            kwargs = _str_keyed("kwargs", _dec(obj["kwargs"], _OUTER))
            resolved = _str_keyed("resolved", _dec(obj.get("resolved", {}), _OUTER))
            return TaskMessage(
                id=obj["id"],
                name=obj["name"],
                queue=obj["queue"],
                args=tuple(_dec(obj["args"], _OUTER)),
                kwargs=kwargs,
                options=TaskOptions(**{k: _dec(v, 0) for k, v in obj["options"].items()}),
                refs=tuple(_expect(str, r) for r in obj["refs"]),
                resolved=resolved,
            )
        except (SerializationError, TypeError, ValueError) as exc:
            raise _decode_error("message", data, _why(exc)) from exc

    def encode_value(self, value: object) -> bytes:
        """Encode a result or argument value."""
        try:
            return orjson.dumps(_enc(value, 0))
        except (_Unencodable, orjson.JSONEncodeError) as exc:
            raise _encode_error(exc, [("value", value)]) from None

    def decode_value(self, data: bytes) -> Any:
        """Decode what :meth:`encode_value` wrote."""
        tree = _loads(data, "value")
        try:
            return _dec(tree, 0)
        except SerializationError as exc:
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
