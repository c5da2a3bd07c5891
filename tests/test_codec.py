"""Tests for worq._codec: lossless JSON round trips, refusals, pickle, structuring.

Whole task messages go through :mod:`worq._wire` (envelope and payload); the
envelope's own checks are in tests/test_wire.py.
"""

from __future__ import annotations

import enum
import itertools
import math
import pickle
import re
import sys
import types
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any, Generic, Optional, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worq import Deferred, _codec, get_broker, get_queue
from worq._checks import MAX_SECONDS
from worq._codec import MAX_DEPTH, JsonCodec, PickleCodec, make_codec
from worq._extract import extract_refs
from worq._wire import decode_task, encode_task
from worq.exceptions import DuplicateTask, SerializationError, TaskExpired, TaskFailure
from worq.models import ArgumentRef, Payload, TaskMessage, TaskOptions
from worq.testing import WAIT, thread_worker
from worq.typing import Codec

JSON = JsonCodec()
PICKLE = PickleCodec()
T = TypeVar("T")


@attrs.frozen
class Point:
    """A small attrs value: an int and a Decimal."""

    x: int
    d: Decimal


@attrs.frozen
class Label:
    """A second attrs value, told apart from Point by its field name."""

    text: str


def _shout(text: str) -> str:
    return text + "!"


@attrs.frozen
class Shout:
    """A converter that is not idempotent: running it again on decode would show."""

    text: str = attrs.field(converter=_shout, validator=attrs.validators.instance_of(str))


@attrs.define
class Job:
    """A mutable class whose init=False field changes after construction."""

    name: str
    state: str = attrs.field(init=False, default="new")


_SERIALS = itertools.count()


@attrs.frozen
class Ticket:
    """An init=False field set by __attrs_post_init__, differently on every call."""

    label: str
    serial: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "serial", next(_SERIALS))


@attrs.frozen
class Box(Generic[T]):
    """A generic attrs class: its TypeVar has no value to structure with."""

    item: T


@attrs.define
class Unset:
    """An init=False field with no default: it has no value until one is set."""

    x: int = attrs.field(init=False)


@attrs.frozen(cache_hash=True)
class Cached:
    """A hash cached on the instance: a rebuilt one must start with an empty cache."""

    x: int


def _double(x: int) -> int:
    return x * 2


@attrs.define(slots=False)
class Legacy:
    """A dict class (no slots), with a converter and an init=False field."""

    x: int = attrs.field(converter=_double)
    seen: int = attrs.field(init=False, default=0)


@attrs.define
class Refused(Exception):
    """An attrs exception: its args are its init fields."""

    code: int


def _job(name: str, state: str) -> Job:
    job = Job(name)
    job.state = state
    return job


class Color(enum.IntEnum):
    """An int subclass that must not come back as a plain int."""

    RED = 1
    BLUE = 2


class Size(enum.StrEnum):
    """A str subclass that must not come back as a plain str."""

    SMALL = "s"


def assert_same(a: Any, b: Any) -> None:
    """Assert ``b`` equals ``a`` with the same types (and float/Decimal spelling) throughout."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, dict):
        keys = {k: k for k in b}
        assert len(a) == len(b)
        for k, v in a.items():
            assert_same(k, keys[k])
            assert_same(v, b[k])
    elif isinstance(a, set | frozenset):
        items = {x: x for x in b}
        assert len(a) == len(b)
        for x in a:
            assert_same(x, items[x])
    elif isinstance(a, float):
        assert repr(a) == repr(b)
    elif isinstance(a, Decimal):
        assert str(a) == str(b)
    elif isinstance(a, datetime | time):
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None)
        assert (a.fold, a.tzinfo, a.tzname()) == (b.fold, b.tzinfo, b.tzname())
    elif isinstance(a, TaskFailure):
        assert_same(a.args, b.args)
    elif attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            assert_same(getattr(a, field.name), getattr(b, field.name))
    else:
        assert a == b


text = st.text(st.characters(codec="utf-8"), max_size=6)
fixed_zones = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
named_zones = st.builds(
    timezone, st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=5)), text.filter(bool)
)
zones: st.SearchStrategy[tzinfo | None] = st.none() | st.timezones() | fixed_zones | named_zones
failures = st.builds(
    lambda cls, *args: cls(*args),
    st.sampled_from([TaskFailure, TaskExpired, DuplicateTask]),
    text,
    text,
    text,
    text,
)
hashable_leaves: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**100), max_value=2**100),
    st.floats(allow_nan=False),
    text,
    st.binary(max_size=6),
    st.datetimes(timezones=zones),
    st.dates(),
    st.times(timezones=zones),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.uuids(),
    failures,
    st.builds(ArgumentRef, text),
    st.builds(Point, st.integers(), st.decimals(allow_nan=False)),
    st.sampled_from(Color),
    st.builds(Shout, text),
    st.builds(Ticket, text),
    st.builds(Cached, st.integers()),
)
hashable_leaves |= st.builds(Box, hashable_leaves)
leaves = hashable_leaves | st.builds(_job, text, text) | st.builds(Legacy, st.integers())
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=4,
)
values: st.SearchStrategy[Any] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(text | st.just("$w"), inner, max_size=3),
        st.dictionaries(hashables, inner, max_size=3),
        st.sets(hashables, max_size=3),
        st.frozensets(hashables, max_size=3),
        st.builds(Box, inner),
    ),
    max_leaves=8,
)
options = st.builds(
    TaskOptions,
    on_error=st.sampled_from(["fail", "pass"]),
    ignore_result=st.booleans(),
    result_timeout=st.integers(1, 10**6) | st.floats(min_value=0.001, max_value=MAX_SECONDS),
    heartrate=st.floats(min_value=0.001, max_value=1e6),
)
messages = st.builds(
    TaskMessage,
    id=text,
    name=text,
    queue=text,
    args=st.lists(values | st.builds(ArgumentRef, text), max_size=3).map(tuple),
    kwargs=st.dictionaries(text | st.just("$w"), values, max_size=3),
    options=options,
    refs=st.lists(text, max_size=3).map(tuple),
    resolved=st.dictionaries(text | st.just("$w"), values | failures, max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_json_value_round_trip(value: Any) -> None:
    """Every supported value decodes equal, with the same types at every level."""
    decoded = JSON.decode_value(JSON.encode_value(value))
    assert decoded == value
    assert_same(value, decoded)


@settings(max_examples=60, deadline=None)
@given(values)
def test_pickle_value_round_trip(value: Any) -> None:
    """The pickle codec round-trips the same values."""
    assert_same(value, PICKLE.decode_value(PICKLE.encode_value(value)))


@settings(max_examples=100, deadline=None)
@given(messages, st.sampled_from([JSON, PICKLE]))
def test_message_round_trip(message: TaskMessage, codec: Codec) -> None:
    """Messages (args, kwargs, ArgumentRefs, refs, options) round-trip in both codecs."""
    decoded = decode_task(codec, encode_task(codec, message), message.id, message.queue)
    assert decoded == message
    assert_same(message.args, decoded.args)
    assert_same(message.kwargs, decoded.kwargs)
    assert_same(message.options, decoded.options)
    assert_same(message.resolved, decoded.resolved)


def test_nan_round_trips() -> None:
    """NaN and infinities (float and Decimal) survive, though NaN != NaN."""
    for value in (float("nan"), float("inf"), float("-inf")):
        assert_same(value, JSON.decode_value(JSON.encode_value(value)))
    for spelling in ("NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "-0", "1.10", "1E+3"):
        assert str(JSON.decode_value(JSON.encode_value(Decimal(spelling)))) == spelling
    decoded = JSON.decode_value(JSON.encode_value([float("nan"), Point(1, Decimal("NaN"))]))
    assert math.isnan(decoded[0])
    assert decoded[1].d.is_nan()


def test_bool_stays_bool() -> None:
    """True stays True, not 1, in lists, dict values and dict keys."""
    assert JSON.encode_value(True) == b"true"
    assert_same([True, 1, False, 0], JSON.decode_value(JSON.encode_value([True, 1, False, 0])))
    assert_same({True: 1, 2: False}, JSON.decode_value(JSON.encode_value({True: 1, 2: False})))


@pytest.mark.parametrize(
    "value",
    [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**5000],
    ids=lambda v: f"{'-' if v < 0 else ''}{v.bit_length()}bits",
)
def test_big_ints(value: int) -> None:
    """Ints beyond 64 bits (even beyond str()'s digit limit) round-trip."""
    assert_same(value, JSON.decode_value(JSON.encode_value(value)))


def test_negative_zero() -> None:
    """-0.0 keeps its sign."""
    decoded = JSON.decode_value(JSON.encode_value(-0.0))
    assert math.copysign(1.0, decoded) == -1.0


def test_datetimes_naive_and_aware() -> None:
    """Naive stays naive; timezone, named offsets, ZoneInfo keys and fold are kept."""
    naive = datetime(2024, 5, 1, 12, 30, 45, 123456)
    paris = ZoneInfo("Europe/Paris")
    cases = [
        naive,
        naive.replace(tzinfo=UTC),
        naive.replace(tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        naive.replace(tzinfo=timezone(timedelta(hours=1), "CET")),
        naive.replace(tzinfo=paris),
        datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=paris),
        time(23, 59, 59, 999999),
        time(1, 2, tzinfo=timezone(timedelta(hours=5))),
        naive.replace(tzinfo=timezone(timedelta(microseconds=1))),
        time(1, 2, tzinfo=timezone(timedelta(hours=-1, microseconds=7), "odd")),
    ]
    for value in cases:
        decoded = JSON.decode_value(JSON.encode_value(value))
        assert_same(value, decoded)
    assert JSON.decode_value(JSON.encode_value(naive)).tzinfo is None
    assert JSON.decode_value(JSON.encode_value(cases[4])).tzinfo is paris


def test_unsupported_tzinfo_refused() -> None:
    """A tzinfo other than timezone/ZoneInfo is refused rather than flattened."""

    class Fixed(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta:
            return timedelta(hours=2)

        def dst(self, dt: datetime | None) -> timedelta:
            return timedelta(0)

        def tzname(self, dt: datetime | None) -> str:
            return "FIXED"

    with pytest.raises(SerializationError, match=r"^value\[0\]: .*'datetime'.*Fixed'"):
        JSON.encode_value([datetime(2024, 1, 1, tzinfo=Fixed())])


def test_enums_tagged() -> None:
    """IntEnum and StrEnum members come back as members, not plain ints or strs."""
    for value in (Color.BLUE, Size.SMALL, {Color.RED: [Size.SMALL]}):
        assert_same(value, JSON.decode_value(JSON.encode_value(value)))


def test_attrs_restored_as_sent() -> None:
    """Converters do not run again, init=False fields keep their values, generics decode.

    __attrs_post_init__ is not called again either: Ticket's serial stays the one sent.
    """
    job, ticket = _job("build", "done"), Ticket("t")
    value = [Shout("hi"), job, ticket, Box(Box(Decimal("1.10"))), {"k": (Box([job]),)}]
    serial = next(_SERIALS)
    decoded = JSON.decode_value(JSON.encode_value(value))
    assert next(_SERIALS) == serial + 1
    assert (decoded[0].text, decoded[1].state, decoded[2].serial) == ("hi!", "done", ticket.serial)
    assert decoded == value
    assert_same(value, decoded)
    message = TaskMessage(
        id="i",
        name="n",
        queue="q",
        args=(Shout("a"),),
        kwargs={"b": Box(job)},
        resolved={"t": ticket},
    )
    assert_same(message, decode_task(JSON, encode_task(JSON, message), message.id, message.queue))


def test_attrs_layouts_restored() -> None:
    """Slotted classes with a cached hash, dict classes and attrs exceptions come back whole."""
    cached = Cached(3)
    hash(cached)  # fills the sender's cache, which does not travel
    legacy = Legacy(2)
    legacy.seen = 5
    refused = Refused(7)
    decoded = JSON.decode_value(JSON.encode_value([cached, legacy, refused]))
    assert decoded[:2] == [cached, legacy]
    assert hash(decoded[0]) == hash(cached)
    assert (decoded[1].x, decoded[1].seen) == (4, 5)
    assert type(decoded[2]) is Refused
    assert (decoded[2].code, decoded[2].args, str(decoded[2])) == (7, (7,), "7")


def test_attrs_field_without_value_refused() -> None:
    """An attrs field that was never set is refused at send, not lost on the way."""
    expected = (
        "value[0]: cannot encode value of type 'Unset' with the json serializer "
        "(its attrs field 'x' has no value)"
    )
    with pytest.raises(SerializationError) as info:
        JSON.encode_value([Unset()])
    assert str(info.value) == expected


def restamp(
    box: Box[Shout], jobs: list[Job], ticket: Ticket
) -> tuple[Box[Shout], list[Job], Ticket]:
    """Hand back what arrived, to compare it with what was sent."""
    return box, jobs, ticket


def test_attrs_arguments_and_results_exact(url: str) -> None:
    """Through a worker and the annotations both ways, attrs values come back as sent."""
    broker = get_broker(url)
    broker.expose(restamp)
    sent = (Box(Shout("hi")), [_job("a", "done")], Ticket("t"))
    with thread_worker(broker):
        deferred = get_queue(url).submit(restamp, *sent)
        assert deferred.wait(WAIT)
    assert deferred.value == sent
    assert_same(sent, deferred.value)
    assert deferred.value[0].item.text == "hi!"


class Foo:
    """Something the JSON codec cannot carry."""


def _gen() -> Iterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (object(), "object"),
        (lambda: 1, "function"),
        (_gen(), "generator"),
        (Foo(), "Foo"),
        (OrderedDict(a=1), "OrderedDict"),
        (defaultdict(list), "defaultdict"),
        (type("MyStr", (str,), {})("x"), "MyStr"),
        (type("MyFailure", (TaskFailure,), {})("a", "b", "c", "d"), "MyFailure"),
        (bytearray(b"x"), "bytearray"),
    ],
)
def test_unencodable_value_named(value: object, kind: str) -> None:
    """Unsupported types and subclasses of supported ones are refused, naming the type."""
    with pytest.raises(SerializationError, match=rf"^value: cannot encode value of type '{kind}'"):
        JSON.encode_value(value)


def test_unencodable_error_path() -> None:
    """The error says where the value was, down through containers and attrs fields."""
    message = TaskMessage(id="t1", name="n", queue="q", args=(1, {"items": [Foo()]}))
    expected = (
        "args[1]['items'][0]: cannot encode value of type 'Foo' with the json serializer "
        "(supported: str, int, float, bool, None, list, tuple, dict, set, frozenset, bytes, "
        "datetime, date, time, timedelta, Decimal, UUID, enums, attrs classes; "
        "or use serializer='pickle')"
    )
    with pytest.raises(SerializationError) as info:
        encode_task(JSON, message)
    assert str(info.value) == expected
    message = TaskMessage(id="t1", name="n", queue="q", kwargs={"p": [(Label(Foo()),)]})  # type: ignore[arg-type]  # Label.text is not a str on purpose
    with pytest.raises(SerializationError, match=re.escape("kwargs['p'][0][0].text: ")):
        encode_task(JSON, message)
    message = TaskMessage(id="t1", name="n", queue="q", resolved={"t0": {1: Foo()}})
    with pytest.raises(SerializationError, match=re.escape("resolved['t0'][1]: ")):
        encode_task(JSON, message)
    with pytest.raises(SerializationError, match=re.escape("value<key #1>: ")):
        JSON.encode_value({1: 2, Foo(): 3})


def test_surrogates_and_cycles_refused() -> None:
    """Lone surrogates and reference cycles raise SerializationError, not TypeError."""
    with pytest.raises(SerializationError, match=re.escape("value['k'][1]: ") + ".*surrogates"):
        JSON.encode_value({"k": ["ok", "\ud800"]})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError):
        JSON.encode_value(loop)


FLAG: list[str] = []


def _set_flag() -> None:
    FLAG.append("unpickled")


class Trap:
    """Unpickling this sets FLAG: proof that pickle.loads ran."""

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return (_set_flag, ())


def test_json_never_unpickles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pickle payloads given to JsonCodec fail without pickle ever running."""
    payload = pickle.dumps(Trap(), protocol=pickle.HIGHEST_PROTOCOL)
    PICKLE.decode_value(payload)
    assert FLAG == ["unpickled"]  # the trap works
    FLAG.clear()

    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("pickle used by JsonCodec")

    pickled_args = PICKLE.encode_payload(Payload(args=(Trap(),)))
    message = encode_task(PICKLE, TaskMessage(id="i", name="n", queue="q", args=(Trap(),)))
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    for data in (payload, pickled_args):
        with pytest.raises(SerializationError, match=r"not valid JSON.*pickle"):
            JSON.decode_value(data)
        with pytest.raises(SerializationError, match=r"not valid JSON.*pickle"):
            JSON.decode_payload(data)
    with pytest.raises(SerializationError, match=r"^cannot decode message payload.*pickle"):
        decode_task(
            JSON, message, "i", "q"
        )  # the envelope is JSON: the pickled arguments are refused
    assert FLAG == []


_ENVELOPE = b'{"v":3,"name":"n","options":{},"refs":[]}'


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00garbage\n{}", "not valid JSON"),
        (b"", "not valid JSON"),
        (_ENVELOPE, "no newline ends the envelope"),
        (b"[1, 2]\n{}", "not an object"),
        (b'{"v": 1}\n{}', "unsupported version 1 (this worq reads versions 2 and 3)"),
        (b'{"v": true}\n', "unsupported version True"),
        (b'{"id": "x"}\n', "unsupported version None"),
        (b'{"v": 3, "name": 5}\n', "field 'name' must be a str"),
        (b'{"v":3,"name":"n","options":{},\n', "not valid JSON"),
        (_ENVELOPE + b"\n", "cannot decode message payload with the json serializer: not valid"),
        (_ENVELOPE + b"\n[1, 2]", "not an object but a list"),
        (_ENVELOPE + b'\n{"args": {}}', "field 'args' must be a list"),
        (_ENVELOPE + b'\n{"args": [], "kwargs": []}', "field 'kwargs' must be a dict"),
    ],
)
def test_bad_message_bytes(data: bytes, reason: str) -> None:
    """Malformed message bytes raise SerializationError saying what is wrong."""
    with pytest.raises(SerializationError, match=re.escape(reason)):
        decode_task(JSON, data, "i", "q")


_PAYLOAD_KEYS = ("args", "kwargs", "resolved")


def _message_bytes(**changes: Any) -> bytes:
    """A message with ``changes`` made to its envelope or its payload, whichever holds the key."""
    data = encode_task(JSON, TaskMessage(id="i", name="n", queue="q"))
    envelope, payload = (orjson.loads(part) for part in data.split(b"\n"))
    for key, value in changes.items():
        (payload if key in _PAYLOAD_KEYS else envelope)[key] = value
    return orjson.dumps(envelope) + b"\n" + orjson.dumps(payload)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"args": {}}, "field 'args' must be a list"),
        ({"refs": [1]}, "refs must hold str task ids, not 1"),
        ({"options": {"retries": {"$w": "int", "v": "-1"}}}, "retries must be an int >= 0"),
        ({"options": {"on_error": "boom"}}, "on_error must be"),
        ({"options": {"colour": 1}}, "colour"),
        ({"kwargs": {"$w": "dict", "v": [[1, 2]]}}, "kwargs must be a dict with str keys"),
        ({"args": [{"$w": "yaml"}]}, "unknown tag 'yaml'"),
        ({"resolved": []}, "resolved must be a dict with str keys"),
    ],
)
def test_bad_message_fields(changes: dict[str, Any], reason: str) -> None:
    """Well-formed JSON with bad message fields is refused."""
    with pytest.raises(SerializationError, match=re.escape(reason)):
        decode_task(JSON, _message_bytes(**changes), "i", "q")


@pytest.mark.parametrize(
    ("tree", "reason"),
    [
        ({"$w": "nope"}, "unknown tag 'nope'"),
        ({"$w": 3}, "unknown tag 3"),
        ({"$w": "tuple", "v": "abc"}, "bad 'tuple' value"),
        ({"$w": "timedelta", "v": [1, "a", 0]}, "bad 'timedelta' value"),
        ({"$w": "bytes", "v": "!!"}, "bad 'bytes' value"),
        ({"$w": "failure", "t": "KeyError", "a": []}, "bad 'failure' value"),
        ({"$w": "dict", "v": [[[1], 2]]}, "unhashable"),
        ({"$w": "attrs", "t": f"{__name__}:Point", "v": {"x": 1}}, "bad 'attrs' value"),
        (
            {"$w": "attrs", "t": f"{__name__}:Point", "v": {"x": 1, "d": 1, "z": 0}},
            "bad 'attrs' value: TypeError: Point has the fields ['x', 'd'], not ['x', 'd', 'z']",
        ),
        (
            {"$w": "attrs", "t": f"{__name__}:Shout", "v": {"text": 5}},
            "bad 'attrs' value: TypeError: (\"'text' must be <class 'str'> (got 5",
        ),
        ([1, {"$w": "uuid", "v": "zz"}], "bad 'uuid' value"),
    ],
)
def test_bad_value_trees(tree: Any, reason: str) -> None:
    """Unknown tags and malformed tag payloads raise SerializationError."""
    with pytest.raises(SerializationError, match=re.escape(reason)):
        JSON.decode_value(orjson.dumps(tree))


def test_error_shows_at_most_80_bytes() -> None:
    """Decode errors quote the start of the data, not all of it."""
    with pytest.raises(SerializationError) as info:
        JSON.decode_value(b"x" * 1000)
    assert "x" * 80 in str(info.value)
    assert "x" * 81 not in str(info.value)


def _retag(data: bytes, module: str) -> bytes:
    tree = orjson.loads(data)
    tree["t"] = tree["t"].replace(__name__, module, 1)
    return orjson.dumps(tree)


def test_attrs_class_not_loaded_gives_dict() -> None:
    """An attrs tag for a class not in sys.modules decodes to a dict the worker can structure."""
    data = _retag(JSON.encode_value(Point(3, Decimal("2.50"))), "no_such_module_xyz")
    decoded = JSON.decode_value(data)
    assert_same({"x": 3, "d": Decimal("2.50")}, decoded)
    assert "no_such_module_xyz" not in sys.modules
    assert_same(Point(3, Decimal("2.50")), JSON.structure(decoded, Point))
    enum_data = _retag(JSON.encode_value(Color.BLUE), "no_such_module_xyz")
    assert_same(2, JSON.decode_value(enum_data))


def test_class_lookup_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lookup neither imports a module nor calls a module's lazy ``__getattr__``."""
    assert "tabnanny" not in sys.modules
    JSON.decode_value(orjson.dumps({"$w": "attrs", "t": "tabnanny:NannyNag", "v": {}}))
    assert "tabnanny" not in sys.modules
    calls: list[str] = []
    lazy = types.ModuleType("worq_lazy_probe")

    def module_getattr(name: str) -> object:
        calls.append(name)
        return Point

    lazy.__getattr__ = module_getattr  # type: ignore[method-assign]  # PEP 562 hook, set by hand
    monkeypatch.setitem(sys.modules, "worq_lazy_probe", lazy)
    tree = {"$w": "attrs", "t": "worq_lazy_probe:Point", "v": {"x": 1, "d": 1}}
    assert JSON.decode_value(orjson.dumps(tree)) == {"x": 1, "d": 1}
    assert calls == []


def test_structure_containers() -> None:
    """structure() passes decoded values through or converts them to the hint."""
    points = [Point(1, Decimal("1.5"))]
    assert JSON.structure(points, list[Point]) is not None
    assert_same(points, JSON.structure(points, list[Point]))
    assert_same(points, JSON.structure([{"x": 1, "d": Decimal("1.5")}], list[Point]))
    assert_same({"a": Decimal("0.1")}, JSON.structure({"a": Decimal("0.1")}, dict[str, Decimal]))
    assert_same((1, "a"), JSON.structure([1, "a"], tuple[int, str]))
    assert_same({1, 2}, JSON.structure([1, 2], set[int]))
    assert JSON.structure(None, Optional[Point]) is None  # noqa: UP045  # Optional is what is tested
    assert_same(points[0], JSON.structure({"x": 1, "d": Decimal("1.5")}, Point | None))
    assert_same(points, JSON.structure(points, list[Point] | None))
    assert_same(Label("hi"), JSON.structure({"text": "hi"}, Point | Label))
    assert_same(points[0], JSON.structure(points[0], Point | Label))
    sentinel = object()
    assert JSON.structure(sentinel, Any) is sentinel


@pytest.mark.parametrize(
    "value",
    [
        Decimal("1.10"),
        UUID(int=5),
        datetime(2024, 1, 1, tzinfo=UTC),
        date(2024, 1, 1),
        time(3, 4),
        timedelta(seconds=5),
        b"raw",
        TaskExpired("a", "b", "c", "d"),
        Point(1, Decimal(2)),
    ],
)
def test_structure_passes_instances_through(value: object) -> None:
    """A value already of the hinted type is returned as is."""
    assert JSON.structure(value, type(value)) is value
    hint: Any = types.GenericAlias(list, (type(value),))
    assert JsonCodec().structure([value], hint) == [value]


def test_structure_mismatch_raises() -> None:
    """A value that does not fit the hint raises SerializationError saying where."""
    with pytest.raises(SerializationError, match=re.escape("$[0].d")):
        JSON.structure([{"x": 1, "d": "1.5"}], list[Point])
    with pytest.raises(SerializationError):
        JSON.structure(TaskFailure("a", "b", "c", "d"), TaskExpired)


def test_pickle_codec_errors() -> None:
    """Pickle encode/decode failures become SerializationError; structure is a no-op."""
    with pytest.raises(SerializationError, match=r"'function'.*pickle"):
        PICKLE.encode_value(lambda: 1)
    with pytest.raises(SerializationError, match="pickle"):
        PICKLE.decode_value(b"not a pickle")
    wrong_payloads: list[object] = [[1], ((), {}, []), [(), {}, {}]]
    for wrong in wrong_payloads:
        with pytest.raises(SerializationError, match=re.escape("(args, kwargs, resolved) tuple")):
            PICKLE.decode_payload(pickle.dumps(wrong))
    unpicklable = "^cannot encode the task's arguments with the pickle serializer: "
    with pytest.raises(SerializationError, match=unpicklable):
        PICKLE.encode_payload(Payload(args=(lambda: 1,)))
    value = object()
    assert PICKLE.structure(value, int) is value


def test_make_codec() -> None:
    """make_codec builds the named codec and rejects unknown names clearly."""
    codecs: list[Codec] = [make_codec("json"), make_codec("pickle")]
    assert [type(c) for c in codecs] == [JsonCodec, PickleCodec]
    assert [c.name for c in codecs] == ["json", "pickle"]
    message = "unknown serializer 'yaml': use 'json' (default) or 'pickle'"
    with pytest.raises(ValueError, match=re.escape(message)):
        make_codec("yaml")


def test_message_wire_format() -> None:
    """A JSON message: a versioned JSON envelope, a newline, the payload with tagged values."""
    message = TaskMessage(
        id="t1",
        name="shop.price",
        queue="q",
        args=("sku", 3, ArgumentRef("t0")),
        kwargs={"at": date(2024, 1, 2)},
        refs=("t0",),
    )
    envelope, payload = encode_task(JSON, message).split(b"\n")
    assert orjson.loads(payload) == {
        "args": ["sku", 3, {"$w": "ref", "id": "t0"}],
        "kwargs": {"at": {"$w": "date", "v": "2024-01-02"}},
    }
    assert orjson.loads(envelope) == {
        "v": 3,
        "name": "shop.price",
        "refs": ["t0"],  # no "options": every option is its default; id and queue: the key's
    }


def test_resolved_outcomes_on_the_wire() -> None:
    """Outcomes the client already held travel under "resolved", only when there are some."""
    failure = TaskExpired("shop.price", "q", "t0", "lost")
    message = TaskMessage(id="t1", name="n", queue="q", resolved={"t0": failure, "t2": (1, 2)})
    assert "resolved" not in orjson.loads(JSON.encode_payload(Payload()))
    tree = orjson.loads(JSON.encode_payload(message.payload))
    assert tree["resolved"] == {
        "t0": {"$w": "failure", "t": "TaskExpired", "a": ["shop.price", "q", "t0", "lost"]},
        "t2": {"$w": "tuple", "v": [1, 2]},
    }
    assert_same(
        message.resolved,
        decode_task(JSON, encode_task(JSON, message), message.id, message.queue).resolved,
    )


def _nested(levels: int, wrap: Callable[[Any], Any] = lambda v: [v], leaf: Any = 0) -> Any:
    """``leaf`` inside ``levels`` containers made by ``wrap``."""
    value = leaf
    for _ in range(levels):
        value = wrap(value)
    return value


TOO_DEEP = (
    f"cannot encode a value nested deeper than {MAX_DEPTH} levels with the json serializer "
    "(flatten it; a reference cycle nests without end)"
)
"""The error for data too deep for pickle too: no pickle hint."""


def test_too_deep_refused_on_send() -> None:
    """A value nested past MAX_DEPTH, or a cycle, is refused naming the task; nothing is stored."""
    q = get_queue("memory://x")
    expected = f"cannot send task 'func' to queue 'default': args[0]: {TOO_DEEP}"
    with pytest.raises(SerializationError, match=f"^{re.escape(expected)}$"):
        q.func(_nested(10_000))
    loop: list[Any] = []
    loop.append(loop)
    hinted = TOO_DEEP[:-1] + "; or use serializer='pickle')"  # pickle carries cycles
    expected = f"cannot send task 'func' to queue 'default': kwargs['k']: {hinted}"
    with pytest.raises(SerializationError, match=f"^{re.escape(expected)}$"):
        q.func(1, k={"a": loop})
    assert len(q) == 0
    pickled = get_queue("memory://x", serializer="pickle")
    with pytest.raises(SerializationError, match=r"^cannot send task 'func' .*pickle serializer"):
        pickled.func(_nested(10_000))
    assert len(pickled) == 0


def test_depth_limit_boundary() -> None:
    """MAX_DEPTH levels of the widest JSON (pair-form dicts) round-trip; one more is refused."""
    deepest = _nested(MAX_DEPTH, lambda v: {"$w": v}, leaf=datetime(2024, 1, 1))
    message = TaskMessage(
        id="i",
        name="n",
        queue="q",
        args=(deepest,),
        kwargs={"$w": deepest},
        resolved={"$w": deepest},
    )
    assert_same(message, decode_task(JSON, encode_task(JSON, message), message.id, message.queue))
    assert_same(deepest, JSON.decode_value(JSON.encode_value(deepest)))
    hashable = _nested(MAX_DEPTH, lambda v: (v,))
    for too_deep in (
        [deepest],
        (deepest,),
        {"k": deepest},
        {hashable: 1},
        frozenset({hashable}),
        Box(deepest),
        TaskFailure(deepest, "q", "i", "e"),
    ):
        with pytest.raises(SerializationError) as info:
            JSON.encode_value(too_deep)
        assert str(info.value) == f"value: {TOO_DEEP[:-1]}; or use serializer='pickle')"


def test_too_deep_refused_on_decode() -> None:
    """Bytes nested past MAX_DEPTH: a SerializationError naming the limit, not a RecursionError."""
    limit = re.escape(f"nested deeper than {MAX_DEPTH} levels")
    trees = [
        _nested(MAX_DEPTH + 1),
        _nested(MAX_DEPTH + 1, lambda v: {"k": v}),
        _nested(MAX_DEPTH + 1, lambda v: {"$w": "tuple", "v": [v]}),
        _nested(MAX_DEPTH + 1, lambda v: {"$w": "dict", "v": [[1, v]]}),
        _nested(MAX_DEPTH + 1, lambda v: {"$w": "attrs", "t": f"{__name__}:Box", "v": {"item": v}}),
        _nested(MAX_DEPTH + 1, lambda v: {"$w": "failure", "t": "TaskFailure", "a": [v]}),
    ]
    for tree in trees:
        with pytest.raises(SerializationError, match=f"^cannot decode value .*: {limit}"):
            JSON.decode_value(orjson.dumps(tree))
        with pytest.raises(SerializationError, match=f"^cannot decode message payload .*: {limit}"):
            decode_task(JSON, _message_bytes(args=[tree]), "i", "q")
        with pytest.raises(SerializationError, match=limit):
            decode_task(JSON, _message_bytes(kwargs={"k": tree}), "i", "q")
    with pytest.raises(SerializationError, match=limit):
        JSON.decode_value(b"[" * 1000 + b"]" * 1000)
    with pytest.raises(SerializationError, match="not valid JSON"):  # past orjson's own limit
        JSON.decode_value(b"[" * 10_000 + b"]" * 10_000)
    assert decode_task(JSON, _message_bytes(args=[_nested(MAX_DEPTH)]), "i", "q").args[
        0
    ] == _nested(MAX_DEPTH)


def test_deferred_found_down_to_the_depth_limit() -> None:
    """A Deferred MAX_DEPTH containers down is swapped; deeper values are left unread."""
    deferred: Deferred[Any] = Deferred(get_broker("memory://x"), "t0", "n")
    assert extract_refs((_nested(MAX_DEPTH, leaf=deferred),), {}).refs == ("t0",)
    assert extract_refs((), {"k": _nested(MAX_DEPTH, leaf=deferred)}).refs == ("t0",)
    too_deep = _nested(10_000, leaf=deferred)
    assert extract_refs((too_deep,), {}).args[0] is too_deep


SAMPLES: dict[type, object] = {
    str: "s",
    int: 2**70,
    float: float("-inf"),
    bool: True,
    type(None): None,
    list: [1],
    tuple: (1,),
    dict: {1: "a"},
    set: {1},
    frozenset: frozenset({1}),
    bytes: b"\x00",
    datetime: datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
    date: date(2024, 1, 2),
    time: time(1, 2, tzinfo=timezone(timedelta(hours=1), "CET")),
    timedelta: timedelta(1, 2, 3),
    Decimal: Decimal("1.10"),
    UUID: UUID(int=1),
    ArgumentRef: ArgumentRef("t0"),
    TaskFailure: TaskFailure("n", "q", "t", "e"),
    TaskExpired: TaskExpired("n", "q", "t", "e"),
    DuplicateTask: DuplicateTask("n", "q", "t", "e"),
}
"""A value of each class the codec registers, in its tagged form where it has one."""
FAMILY_SAMPLES: dict[str, object] = {"enums": Size.SMALL, "attrs classes": Point(1, Decimal(2))}


def _tags(tree: Any) -> Iterator[str]:
    """Every ``"$w"`` tag in a JSON tree."""
    if isinstance(tree, list):
        for item in tree:
            yield from _tags(item)
    elif isinstance(tree, dict):
        if "$w" in tree:
            yield tree["$w"]
        for item in tree.values():
            yield from _tags(item)


def test_registry_is_the_one_source() -> None:
    """Each type is one entry of _TYPES; the dispatch tables and the messages derive from it.

    Every registered class has a sample here (a new entry without one fails),
    every sample round-trips, and the samples write, and so read back, every tag.
    """
    table = _codec._TYPES
    classes = [c for t in table for c in t.classes]
    tags = [t.tag for t in table if t.tag]
    assert len(set(classes)) == len(classes)
    assert len(set(tags)) == len(tags)
    assert all((t.decode is None) == (not t.tag) for t in table)
    assert all(t.encode is not None for t in table if t.covers is not None)
    assert set(_codec._ENCODERS) == {c for t in table if t.encode is not None for c in t.classes}
    assert set(_codec._DECODERS) == set(tags)
    assert ", ".join(t.label for t in table if t.label) == _codec._SUPPORTED
    assert set(SAMPLES) == set(classes)
    assert set(FAMILY_SAMPLES) == {t.label for t in table if t.covers is not None}
    written: set[str] = set()
    for value in [*SAMPLES.values(), *FAMILY_SAMPLES.values()]:
        data = JSON.encode_value(value)
        written.update(_tags(orjson.loads(data)))
        assert_same(value, JSON.decode_value(data))
        if type(value) in _codec._PASSTHROUGH:
            assert JSON.structure(value, type(value)) is value
    assert written == set(tags)


def test_one_entry_adds_a_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry in the table is all a new type needs: both directions, messages, annotations."""
    with pytest.raises(SerializationError, match="value of type 'Fraction'"):
        JSON.encode_value(Fraction(1, 3))
    fraction = _codec._Encodable(
        "Fraction",
        (Fraction,),
        "fraction",
        lambda o, _: {"$w": "fraction", "v": [o.numerator, o.denominator]},
        lambda n, _: Fraction(*n["v"]),
        passthrough=True,
    )
    table = (*_codec._TYPES, fraction)
    derived = ("_BY_CLASS", "_ENCODERS", "_FAMILIES", "_DECODERS", "_SUPPORTED", "_PASSTHROUGH")
    monkeypatch.setattr(_codec, "_TYPES", table)
    for name, value in zip(derived, _codec._index(table), strict=True):
        monkeypatch.setattr(_codec, name, value)
    codec = JsonCodec()
    third = Fraction(1, 3)
    data = codec.encode_value({"k": (third,)})
    assert data == b'{"k":{"$w":"tuple","v":[{"$w":"fraction","v":[1,3]}]}}'
    assert_same({"k": (third,)}, codec.decode_value(data))
    assert codec.structure(third, Fraction) is third
    with pytest.raises(SerializationError, match=r"\(supported: str, .*attrs classes, Fraction;"):
        codec.encode_value([Foo()])
