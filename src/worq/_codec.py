"""Serializers: task payloads and values to bytes and back.

:class:`JsonCodec` (``"json"``, the default) writes orjson bytes and carries only
data: decoding never imports a module and never unpickles, so whoever can write
to the queue cannot make a worker run code it has not already loaded. Accepted
values come back equal and of the same type at every level; a value that could
not is refused with :class:`~worq.exceptions.SerializationError`, not degraded.

:class:`PickleCodec` (``"pickle"``) carries any picklable object, but unpickling
executes code chosen by whoever wrote the bytes: use it only when everyone who
can write to the queue is trusted.

A stored task is a JSON envelope then a payload in the codec's format (see
:mod:`worq._wire`); a codec writes the payload and the values (results, and
arguments handed from task to task). The JSON payload is one object
``{"args": [...], "kwargs": {...}}`` (``"kwargs"`` left out when empty), plus
``"resolved": {...}`` when the client already held some referenced outcomes.

JSON values: str, bool, None, 64-bit ints, finite floats, lists and dicts with
only str keys are themselves; anything else is an object ``{"$w": tag, ...}``.
Every encodable type is one :class:`_Encodable` entry of :data:`_TYPES`, which
holds side by side its name in error messages, the classes it covers, its tag,
its encoder and its decoder; the comment above each entry shows its form on
the wire. The dispatch tables (:data:`_ENCODERS` by exact class,
:data:`_DECODERS` by tag), the "supported: ..." list of error messages and the
types :mod:`worq._structure` passes through are all derived from that table,
so adding a type is adding an entry (and a row to the table of
``docs/serialization.md``): a container also gives ``walk``, so that errors
can say where inside it a value sits, and counts its levels with :func:`_nest`
and :func:`_inside`; a type whose instances the decoder rebuilds whole sets
``passthrough``.

How a value is restored is shared between its tag and the task's annotation.
The tag brings a value back by itself, whatever the annotation says: every
type of the table, and attrs and enum classes already loaded in the decoding
process. What the tag cannot restore arrives as plain data: an attrs instance
or enum member whose class is not loaded here comes back as its field dict or
its value. The worker then fits each argument to its parameter's annotation
(:meth:`JsonCodec.structure`, cattrs): instances pass through as they are,
and plain data is converted, the field dict becoming the annotated attrs class.

An attrs instance carries every field, ``init=False`` ones too, and is rebuilt
without calling ``__init__`` (see :func:`_restore`), so converters do not run
twice and nothing falls back to a default; generic classes need nothing more.

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
import functools
import math
import pickle
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs
import cattrs
import orjson

from worq._structure import make_json_converter
from worq.exceptions import DuplicateTask, SerializationError, TaskExpired, TaskFailure
from worq.models import ArgumentRef, Payload
from worq.typing import Codec

__all__ = [
    "MAX_DEPTH",
    "JsonCodec",
    "PickleCodec",
    "children",
    "decode_error",
    "decode_tree",
    "dump_json",
    "encode_tree",
    "explain",
    "make_codec",
]

MAX_DEPTH = 64
"""How deeply a value may nest; each list, tuple, set, frozenset, dict, attrs
instance, enum member and TaskFailure is one level. The bound keeps encoding,
decoding and :mod:`worq._arguments` far below Python's recursion limit (so a
deep value or a reference cycle is refused, never a RecursionError) and the
JSON within orjson's 254 levels (a level takes at most three, a pair-form dict)."""

_TAG = "$w"
_OUTER = -1  # depth of a payload's args list and kwargs dict: they hold values, not levels of them
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_MICROSECOND = timedelta(microseconds=1)
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
_FAILURES = {c.__name__: c for c in (TaskFailure, TaskExpired, DuplicateTask)}
_PAYLOAD_FIELDS: tuple[tuple[str, type], ...] = (("args", list), ("kwargs", dict))
_NO_KWARGS: dict[str, Any] = {}
"""What a payload without ``"kwargs"`` means (the encoder leaves out empty ones)."""

_T = TypeVar("_T")
_Encode = Callable[[Any, int], Any]
"""Value and its depth (how many containers hold it) to a JSON-native tree."""
_Decode = Callable[[dict[str, Any], int], Any]
"""Tagged object and its depth back to the value."""
_Walk = Callable[[str, Any], Iterable[tuple[str, object]]]
"""Path and container to what it holds, each with its path, in encoding order."""


@attrs.frozen
class _Encodable:
    """One kind of value the JSON codec carries: everything the codec knows of it.

    Attributes:
        label: How "supported: ..." in error messages names it; "" leaves
            worq's own types (ArgumentRef, the TaskFailures) out of that list.
        classes: The exact classes it covers: encoding dispatches on the exact
            type, so a subclass is never taken for its base.
        tag: Its ``"$w"`` tag on the wire; "" when JSON says it natively.
        encode: The encoder; None for str, bool and None, which the encoder
            hands on as they are before any lookup.
        decode: The decoder of ``tag``'s objects.
        covers: For an open family (attrs classes, enums), which classes
            belong to it; tried, in table order, after the exact classes.
        walk: For a container, what it holds, so that an error can say where.
        passthrough: The decoder rebuilds instances whole, so an annotation of
            this class hands them on instead of letting cattrs parse them again.
    """

    label: str
    classes: tuple[type, ...] = ()
    tag: str = ""
    encode: _Encode | None = None
    decode: _Decode | None = None
    covers: Callable[[type], bool] | None = None
    walk: _Walk | None = None
    passthrough: bool = False


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
    task; a subclass misses the table and is refused unless it belongs to a
    family (an attrs class, an enum), so it is never silently downgraded.
    """
    cls: type = type(obj)
    if cls is str or cls is bool or obj is None:
        return obj
    if cls is int:
        return obj if _I64_MIN <= obj <= _I64_MAX else _enc_big_int(obj, depth)
    encoder = _ENCODERS.get(cls) or _family_encoder(cls)
    if encoder is not None:
        return encoder(obj, depth)
    raise _Unencodable(obj, depth)


@functools.lru_cache(maxsize=256)
def _family_encoder(cls: type) -> _Encode | None:
    """The encoder of the family (attrs classes, enums) ``cls`` belongs to, if any.

    Remembered per class, in a bounded cache, so that the next instance of an
    attrs class costs a lookup, not every family's test again.
    """
    for covers, encode in _FAMILIES:
        if covers(cls):
            return encode
    return None


def _enc_big_int(obj: int, depth: int) -> Any:
    """An int beyond 64 bits, which JSON readers would round: as hex in a tag."""
    return {_TAG: "int", "v": format(obj, "x")}


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


def _enc_enum(obj: enum.Enum, depth: int) -> Any:
    cls = type(obj)
    ref = f"{cls.__module__}:{cls.__qualname__}"  # what _find_class reads
    return {_TAG: "enum", "t": ref, "v": _enc(obj.value, _nest(obj, depth))}


def _is_enum(cls: type) -> bool:
    return issubclass(cls, enum.Enum)


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


def _items(tag: str) -> _Encode:
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


def _walk_items(path: str, obj: Any) -> Iterator[tuple[str, object]]:
    return ((f"{path}[{i}]", x) for i, x in enumerate(obj))


def _walk_members(path: str, obj: Any) -> Iterator[tuple[str, object]]:
    return ((f"{path}<item #{i}>", x) for i, x in enumerate(obj))


def _walk_dict(path: str, obj: dict[Any, Any]) -> Iterator[tuple[str, object]]:
    for i, (k, v) in enumerate(obj.items()):
        yield f"{path}<key #{i}>", k
        yield f"{path}[{k!r}]", v


def _walk_failure(path: str, obj: TaskFailure) -> Iterator[tuple[str, object]]:
    return ((f"{path}.args[{i}]", x) for i, x in enumerate(obj.args))


def _walk_attrs(path: str, obj: Any) -> Iterator[tuple[str, object]]:
    return ((f"{path}.{a.name}", getattr(obj, a.name)) for a in attrs.fields(type(obj)))


def _walk_enum(path: str, obj: enum.Enum) -> Iterator[tuple[str, object]]:
    yield f"{path}.value", obj.value


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
        raise SerializationError(f"bad {tag!r} value: {explain(exc)}") from exc


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


_TYPES: tuple[_Encodable, ...] = (
    # JSON says str, bool and None (and small ints, finite floats, lists, str-keyed dicts).
    _Encodable("str", (str,)),
    # beyond 64 bits: {"$w": "int", "v": "-1f0..."} (hex); _enc writes smaller ones as they are
    _Encodable(
        "int",
        (int,),
        "int",
        _enc_big_int,
        lambda n, _: int(_expect(str, n["v"]), 16),
    ),
    # nan, inf, -inf: {"$w": "float", "v": "nan"}
    _Encodable(
        "float",
        (float,),
        "float",
        lambda o, _: o if math.isfinite(o) else {_TAG: "float", "v": repr(o)},
        lambda n, _: float(_expect(str, n["v"])),
    ),
    _Encodable("bool", (bool,)),
    _Encodable("None", (types.NoneType,)),
    _Encodable("list", (list,), encode=_enc_list, walk=_walk_items),
    # {"$w": "tuple", "v": [item, ...]}, and so for set and frozenset
    _Encodable(
        "tuple",
        (tuple,),
        "tuple",
        _items("tuple"),
        lambda n, d: tuple(_dec_items(n["v"], d)),
        walk=_walk_items,
    ),
    # with a non-str or "$w" key: {"$w": "dict", "v": [[key, value], ...]}
    _Encodable("dict", (dict,), "dict", _enc_dict, _dec_dict, walk=_walk_dict),
    _Encodable(
        "set",
        (set,),
        "set",
        _items("set"),
        lambda n, d: set(_dec_items(n["v"], d)),
        walk=_walk_members,
    ),
    _Encodable(
        "frozenset",
        (frozenset,),
        "frozenset",
        _items("frozenset"),
        lambda n, d: frozenset(_dec_items(n["v"], d)),
        walk=_walk_members,
    ),
    # {"$w": "bytes", "v": base64}
    _Encodable(
        "bytes",
        (bytes,),
        "bytes",
        lambda o, _: {_TAG: "bytes", "v": base64.b64encode(o).decode("ascii")},
        lambda n, _: base64.b64decode(_expect(str, n["v"]), validate=True),
        passthrough=True,
    ),
    # {"$w": "datetime", "v": isoformat, "z"?: zone key, "n"?: tz name,
    #  "o"?: sub-second offset in µs, "f"?: 1 (fold)}, and so for time
    _Encodable(
        "datetime",
        (datetime,),
        "datetime",
        lambda o, d: _enc_clock("datetime", o, d),
        lambda n, _: _dec_clock(datetime.fromisoformat, n),
        passthrough=True,
    ),
    # {"$w": "date", "v": "2024-05-01"}
    _Encodable(
        "date",
        (date,),
        "date",
        lambda o, _: {_TAG: "date", "v": o.isoformat()},
        lambda n, _: date.fromisoformat(_expect(str, n["v"])),
        passthrough=True,
    ),
    _Encodable(
        "time",
        (time,),
        "time",
        lambda o, d: _enc_clock("time", o, d),
        lambda n, _: _dec_clock(time.fromisoformat, n),
        passthrough=True,
    ),
    # {"$w": "timedelta", "v": [days, seconds, µs]}
    _Encodable(
        "timedelta",
        (timedelta,),
        "timedelta",
        lambda o, _: {_TAG: "timedelta", "v": [o.days, o.seconds, o.microseconds]},
        lambda n, _: timedelta(*(_expect(int, x) for x in _expect(list, n["v"]))),
        passthrough=True,
    ),
    # {"$w": "decimal", "v": str(d)}: keeps the exponent, -0, NaN, Infinity
    _Encodable(
        "Decimal",
        (Decimal,),
        "decimal",
        lambda o, _: {_TAG: "decimal", "v": str(o)},
        lambda n, _: Decimal(_expect(str, n["v"])),
        passthrough=True,
    ),
    # {"$w": "uuid", "v": str(u)}
    _Encodable(
        "UUID",
        (UUID,),
        "uuid",
        lambda o, _: {_TAG: "uuid", "v": str(o)},
        lambda n, _: UUID(_expect(str, n["v"])),
        passthrough=True,
    ),
    # {"$w": "ref", "id": task_id}: what stands in a payload for another task's result
    _Encodable(
        "",
        (ArgumentRef,),
        "ref",
        lambda o, _: {_TAG: "ref", "id": o.task_id},
        lambda n, _: ArgumentRef(_expect(str, n["id"])),
    ),
    # {"$w": "failure", "t": "TaskExpired", "a": [args], "n"?: [notes]}
    _Encodable(
        "",
        tuple(_FAILURES.values()),
        "failure",
        _enc_failure,
        _dec_failure,
        walk=_walk_failure,
        passthrough=True,
    ),
    # {"$w": "enum", "t": "module:QualName", "v": member.value}, for any Enum subclass
    _Encodable("enums", (), "enum", _enc_enum, _dec_enum, covers=_is_enum, walk=_walk_enum),
    # {"$w": "attrs", "t": "module:QualName", "v": {field: value}}, for any attrs class
    _Encodable(
        "attrs classes", (), "attrs", _enc_attrs, _dec_attrs, covers=attrs.has, walk=_walk_attrs
    ),
)
"""Every type the JSON codec carries, in the order error messages list them."""

_Tables = tuple[
    dict[type, _Encodable],
    dict[type, _Encode],
    tuple[tuple[Callable[[type], bool], _Encode], ...],
    dict[str, _Decode],
    str,
    tuple[type, ...],
]


def _index(table: tuple[_Encodable, ...]) -> _Tables:
    """Everything the codec looks up, derived from ``table`` and from nothing else.

    By exact class, the entry (for :func:`children`) and its encoder; the open
    families' tests and encoders, in table order; the decoders by tag; the
    "supported: ..." list; the classes structuring passes through.
    """
    by_class = {cls: t for t in table for cls in t.classes}
    encoders = {cls: t.encode for cls, t in by_class.items() if t.encode is not None}
    families = tuple(
        (t.covers, t.encode) for t in table if t.covers is not None and t.encode is not None
    )
    decoders = {t.tag: t.decode for t in table if t.decode is not None}
    supported = ", ".join(t.label for t in table if t.label)
    passthrough = tuple(cls for t in table if t.passthrough for cls in t.classes)
    return by_class, encoders, families, decoders, supported, passthrough


_BY_CLASS, _ENCODERS, _FAMILIES, _DECODERS, _SUPPORTED, _PASSTHROUGH = _index(_TYPES)


def children(path: str, obj: object) -> Iterable[tuple[str, object]]:
    """What the encoder walks into, in the encoder's order, each with its path.

    For error messages only. Found as :func:`_enc` finds the encoder, by exact
    class and then by family, so it visits what encoding visited, in its order.
    """
    cls = type(obj)
    kind = _BY_CLASS.get(cls) or next(
        (t for t in _TYPES if t.covers is not None and t.covers(cls)), None
    )
    return () if kind is None or kind.walk is None else kind.walk(path, obj)


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
            found = _locate(children(path, obj), match, depth + 1)
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


def dump_json(
    obj: _T,
    tree: Callable[[_T], Any],
    roots: Callable[[_T], Iterable[tuple[str, object]]],
    *,
    within: str = "with the json serializer",
    suggest_pickle: bool = True,
) -> bytes:
    """orjson bytes of ``tree(obj)``, which builds its values with :func:`encode_tree`.

    On failure, a SerializationError saying what could not be encoded
    ``within`` what and where among ``roots(obj)``, the top-level values
    (depth 0) with their paths. ``roots`` runs only then, so the common case
    pays nothing for it. ``suggest_pickle`` adds the hint to switch to the
    pickle serializer, where the culprit is picklable and switching would help.
    """
    try:
        return orjson.dumps(tree(obj))
    except (_Unencodable, orjson.JSONEncodeError) as exc:
        raise _encode_error(exc, list(roots(obj)), within, suggest_pickle) from None


def _encode_error(
    exc: Exception, roots: list[tuple[str, object]], within: str, suggest_pickle: bool
) -> SerializationError:
    """Say what could not be encoded and where; runs only once encoding has failed.

    A too-deep value is pointed at by its root alone: the full path would be
    dozens of ``[0]``.
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
    if suggest_pickle and _picklable(culprit):
        why += "; or use serializer='pickle'"
    return SerializationError(f"{where}cannot encode {what} {within} ({why})")


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


def encode_tree(value: object) -> Any:
    """``value`` as a top-level JSON tree, for :func:`dump_json` (the envelope's options)."""
    return _enc(value, 0)


def decode_tree(node: Any) -> Any:
    """What :func:`encode_tree` wrote, back as a value; SerializationError when malformed."""
    return _dec(node, 0)


def decode_error(what: str, data: bytes, reason: str) -> SerializationError:
    """``cannot decode {what}: {reason}``, quoting the start of ``data`` to show what it was."""
    head = f"{bytes(data[:80])!r}{'...' if len(data) > 80 else ''}"
    return SerializationError(f"cannot decode {what}: {reason} ({head})")


def explain(exc: BaseException) -> str:
    """An error's text for a decode message: worq's own as is, others with their type."""
    return str(exc) if isinstance(exc, SerializationError) else f"{type(exc).__name__}: {exc}"


def _payload_tree(p: Payload) -> dict[str, Any]:
    out = {"args": [_enc(a, 0) for a in p.args]}
    if p.kwargs:
        out["kwargs"] = _enc_dict(p.kwargs, _OUTER)
    if p.resolved:  # rare: the common payload keeps to the documented keys
        out["resolved"] = _enc_dict(p.resolved, _OUTER)
    return out


def _payload_roots(p: Payload) -> Iterator[tuple[str, object]]:
    yield from children("args", p.args)
    yield from children("kwargs", p.kwargs)
    yield from children("resolved", p.resolved)


def _value_roots(value: object) -> list[tuple[str, object]]:
    return [("value", value)]


def _str_keyed(field: str, value: Any) -> dict[str, Any]:
    if type(value) is not dict or not all(type(k) is str for k in value):
        raise TypeError(f"{field} must be a dict with str keys")
    return value


def _loads(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        hint = " (pickle data? use one serializer everywhere)" if data[:1] == b"\x80" else ""
        raise decode_error(what, data, f"not valid JSON: {exc}{hint}") from exc


class JsonCodec:
    """The default codec: orjson bytes that carry data, never code.

    Safe with an untrusted queue: decoding imports nothing and never unpickles.
    Values keep their exact types (the module docstring lists the format);
    anything that would not is refused when encoding, naming its type and path.
    """

    def __init__(self) -> None:
        self._converter = make_json_converter(_PASSTHROUGH)

    @property
    def name(self) -> str:
        """``"json"``."""
        return "json"

    def encode_payload(self, payload: Payload) -> bytes:
        """Encode a task's arguments as one JSON object, ``"resolved"`` only when needed."""
        return dump_json(payload, _payload_tree, _payload_roots)

    def decode_payload(self, data: bytes) -> Payload:
        """Decode and check a payload: any malformed part raises SerializationError."""
        what = "message payload with the json serializer"
        obj = _loads(data, what)
        if type(obj) is not dict:
            raise decode_error(what, data, f"not an object but a {type(obj).__name__}")
        for key, kind in _PAYLOAD_FIELDS:
            value = obj.get(key, _NO_KWARGS if key == "kwargs" else None)
            if type(value) is not kind:
                why = f"field {key!r} must be a {kind.__name__}, not {value!r:.40}"
                raise decode_error(what, data, why)
        try:
            return Payload(
                args=tuple(_dec(obj["args"], _OUTER)),
                kwargs=_str_keyed("kwargs", _dec(obj.get("kwargs", _NO_KWARGS), _OUTER)),
                resolved=_str_keyed("resolved", _dec(obj.get("resolved", {}), _OUTER)),
            )
        except (SerializationError, TypeError) as exc:
            raise decode_error(what, data, explain(exc)) from exc

    def encode_value(self, value: object) -> bytes:
        """Encode a result or argument value."""
        return dump_json(value, encode_tree, _value_roots)

    def decode_value(self, data: bytes) -> Any:
        """Decode what :meth:`encode_value` wrote."""
        what = "value with the json serializer"
        tree = _loads(data, what)
        try:
            return _dec(tree, 0)
        except SerializationError as exc:
            raise decode_error(what, data, explain(exc)) from exc

    def structure(self, value: Any, hint: Any) -> Any:
        """Convert a decoded value to a task's annotation, e.g. a dict to an attrs class."""
        try:
            return self._converter.structure(value, hint)
        except Exception as exc:
            why = explain(exc)
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

    def encode_payload(self, payload: Payload) -> bytes:
        """Pickle ``(args, kwargs, resolved)``.

        A plain tuple rather than the Payload itself: the bytes then name no
        worq class, so moving or renaming one does not strand stored tasks.
        """
        return _pickle((payload.args, payload.kwargs, payload.resolved), "the task's arguments")

    def decode_payload(self, data: bytes) -> Payload:
        """Unpickle a payload (this runs code from the bytes: trusted queues only)."""
        parts = _unpickle(data)
        if type(parts) is tuple and [type(p) for p in parts] == [tuple, dict, dict]:
            args, kwargs, resolved = parts
            return Payload(args=args, kwargs=kwargs, resolved=resolved)
        why = f"expected a pickled (args, kwargs, resolved) tuple, got {parts!r:.80}"
        raise SerializationError(f"cannot decode with the pickle serializer: {why}")

    def encode_value(self, value: object) -> bytes:
        """Pickle a value with the highest protocol."""
        return _pickle(value, f"a {type(value).__qualname__!r}")

    def decode_value(self, data: bytes) -> Any:
        """Unpickle a value (this runs code from the bytes: trusted queues only)."""
        return _unpickle(data)

    def structure(self, value: Any, hint: Any) -> Any:
        """Return ``value`` unchanged: unpickling already rebuilt the original objects."""
        return value


def _pickle(value: object, what: str) -> bytes:
    """Pickle ``value`` (described as ``what`` if it fails) with the highest protocol."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise SerializationError(f"cannot encode {what} with the pickle serializer: {exc}") from exc


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
