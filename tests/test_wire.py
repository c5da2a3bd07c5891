"""Tests for worq._wire: a JSON envelope, a newline, the codec's payload."""

from __future__ import annotations

import pickle
import re
import sys
import time
import types
from decimal import Decimal

import attrs
import orjson
import pytest

from worq import Task
from worq._codec import JsonCodec, PickleCodec
from worq._wire import VERSION, decode_envelope, decode_task, encode_task
from worq.exceptions import SerializationError
from worq.models import ArgumentRef, Envelope, TaskMessage, TaskOptions
from worq.typing import Codec

JSON = JsonCodec()
PICKLE = PickleCodec()
CODECS = pytest.mark.parametrize("codec", [JSON, PICKLE], ids=["json", "pickle"])

MESSAGE = TaskMessage(
    id="t1",
    name="shop.price",
    queue="default",
    options=TaskOptions(retries=2, time_limit=5),
    refs=("t0",),
    args=("sku", ArgumentRef("t0")),
    kwargs={"at": Decimal("1.50")},
)


@CODECS
def test_envelope_is_json_whatever_the_serializer(codec: Codec) -> None:
    """Both codecs write the same JSON envelope line; only the payload differs."""
    data = encode_task(codec, MESSAGE)
    head, _, payload = data.partition(b"\n")
    assert orjson.loads(head) == {
        "v": VERSION,
        "name": "shop.price",
        "options": {"retries": 2, "time_limit": 5},  # only what differs from the defaults
        "refs": ["t0"],
    }
    assert payload == codec.encode_payload(MESSAGE.payload)
    assert decode_envelope(data, "t1", "default") == (MESSAGE.envelope, payload)
    assert decode_task(codec, data, "t1", "default") == MESSAGE


def test_pickle_payload_is_pickle() -> None:
    """With the pickle serializer, what follows the envelope is pickle bytes."""
    payload = encode_task(PICKLE, MESSAGE).partition(b"\n")[2]
    assert payload.startswith(b"\x80")
    assert PICKLE.decode_payload(payload) == MESSAGE.payload


@CODECS
def test_newlines_inside_values(codec: Codec) -> None:
    """A newline inside an id or an argument is escaped: the first raw one ends the envelope."""
    message = TaskMessage(id="a\nb", name="n\n", queue="q", args=("x\ny",), kwargs={"k\n": b"\n"})
    data = encode_task(codec, message)
    assert b"\n" not in data.partition(b"\n")[0]
    assert decode_task(codec, data, "a\nb", "q") == message


def test_attempt_and_lease_stay_off_the_wire() -> None:
    """The backend hands attempt and lease over with the message: decoding gives the defaults."""
    taken = attrs.evolve(MESSAGE, attempt=3, lease="secret-lease")
    data = encode_task(JSON, taken)
    assert b"secret-lease" not in data
    assert data == encode_task(JSON, MESSAGE)
    envelope, _ = decode_envelope(data, "t1", "default")
    assert (envelope.attempt, envelope.lease) == (1, "")


def test_envelope_without_unpickling_the_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    """A payload whose class is missing here still yields its envelope, and pickle never runs."""
    module = types.ModuleType("worq_vanishing_probe")
    gone = type("Gone", (), {"__module__": module.__name__})
    module.Gone = gone  # type: ignore[attr-defined]  # where pickle looks the class up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    data = encode_task(PICKLE, attrs.evolve(MESSAGE, args=(gone(),)))
    monkeypatch.delitem(sys.modules, module.__name__)  # as in a process without that module
    with pytest.raises(SerializationError, match="cannot decode with the pickle serializer"):
        decode_task(PICKLE, data, "t1", "default")

    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("decode_envelope unpickled")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    envelope, payload = decode_envelope(data, "t1", "default")
    assert envelope == MESSAGE.envelope
    assert payload == data.partition(b"\n")[2]


def test_envelope_of_a_garbage_json_payload() -> None:
    """A JSON payload that is garbage does not stop the envelope; decoding the task names it."""
    head = encode_task(JSON, MESSAGE).partition(b"\n")[0]
    data = head + b"\n\x00 not json at all"
    assert decode_envelope(data, "t1", "default") == (MESSAGE.envelope, b"\x00 not json at all")
    with pytest.raises(SerializationError, match=r"^cannot decode message payload with the json"):
        decode_task(JSON, data, "t1", "default")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            orjson.dumps({"v": 1, "id": "t1"}),
            "unsupported version 1 (this worq reads versions 2 and 3)",
        ),
        (b'{"v": 99}\n{}', "unsupported version 99 (this worq reads versions 2 and 3)"),
        (b"", "not valid JSON: "),
        (pickle.dumps(("pickled", "message")), "(pickle data? the envelope is JSON whatever the"),
        (b"\x80\x04junk\n", "(pickle data? the envelope is JSON whatever the serializer"),
        (b"\x00junk", "not valid JSON: "),
    ],
)
def test_no_envelope_refused(data: bytes, reason: str) -> None:
    """Bytes without a version 2 envelope line are refused, saying what they look like."""
    with pytest.raises(SerializationError, match=r"^cannot decode message envelope: ") as info:
        decode_envelope(data, "t1", "default")
    assert reason in str(info.value)


def test_missing_separator_refused() -> None:
    """An envelope with no newline after it is malformed, even if the JSON itself is fine."""
    head = encode_task(JSON, MESSAGE).partition(b"\n")[0]
    assert len(head) <= 80  # shown whole, without "..."
    expected = (
        "cannot decode message envelope: no newline ends the envelope, so no payload follows "
        f"({head!r})"
    )
    with pytest.raises(SerializationError) as info:
        decode_envelope(head, "t1", "default")
    assert str(info.value) == expected


def test_envelope_encoding_errors_name_the_field() -> None:
    """Envelope fields that JSON cannot carry are named, with no advice to switch to pickle."""
    within = "in the message envelope, which is JSON whatever the serializer"
    surrogate = attrs.evolve(MESSAGE, name="\ud800")
    expected = f"name: cannot encode a str holding lone surrogates {within} (JSON text must be"
    for codec in (JSON, PICKLE):
        with pytest.raises(SerializationError, match=f"^{re.escape(expected)}"):
            encode_task(codec, surrogate)
    odd = attrs.evolve(MESSAGE, options=TaskOptions(on_error=type("Odd", (str,), {})("fail")))
    with pytest.raises(SerializationError) as info:
        encode_task(PICKLE, odd)
    assert str(info.value).startswith(
        f"options.on_error: cannot encode value of type 'Odd' {within}"
    )
    assert "pickle" not in str(info.value)


def test_arguments_reported_before_the_envelope() -> None:
    """When both fail, the argument (the likelier culprit) is the one named."""
    both = attrs.evolve(MESSAGE, id="\ud800", args=(object(),))
    with pytest.raises(SerializationError, match=r"^args\[0\]: cannot encode value of type"):
        encode_task(JSON, both)


def test_envelope_round_trips_alone() -> None:
    """decode_envelope hands back an Envelope, not a TaskMessage: it knows nothing of arguments."""
    envelope, _ = decode_envelope(encode_task(JSON, MESSAGE), "t1", "default")
    assert type(envelope) is Envelope
    assert envelope.tracked


def test_defaults_are_left_out_and_restored_exactly() -> None:
    """A task with default options and no refs writes neither; a float default keeps its type."""
    plain = TaskMessage(id="t2", name="noop", queue="default", args=(1,))
    data = encode_task(JSON, plain)
    assert data == b'{"v":3,"name":"noop"}\n{"args":[1]}'
    assert decode_task(JSON, data, "t2", "default") == plain
    floating = attrs.evolve(plain, options=TaskOptions(result_timeout=3600.0))
    envelope, _ = decode_envelope(encode_task(JSON, floating), "t1", "default")
    assert type(envelope.options.result_timeout) is float
    with pytest.raises(SerializationError, match="field 'refs' must be a list"):
        decode_envelope(b'{"v":3,"name":"n","refs":{}}\n{}', "t", "q")


def test_id_and_queue_come_from_where_the_task_is_stored() -> None:
    """Neither is written (Redis keeps the bytes under both); version 2, which wrote them, reads."""
    data = encode_task(JSON, MESSAGE)
    assert b'"t1"' not in data.partition(b"\n")[0]
    assert b"default" not in data
    envelope, _ = decode_envelope(data, "elsewhere", "other")
    assert (envelope.id, envelope.queue) == ("elsewhere", "other")
    old = b'{"v":2,"id":"t2","name":"noop","queue":"default"}\n{"args":[1],"kwargs":{}}'
    plain = TaskMessage(id="t2", name="noop", queue="default", args=(1,))
    assert decode_task(JSON, old, "t2", "default") == plain


def test_a_traceparent_travels_in_the_envelope_only_when_there_is_one() -> None:
    """An envelope carries its sender's traceparent as ``tp`` (untraced ones have no
    key at all); a ``tp`` that is not a string is read as none, never refused."""
    from worq._codec import make_codec
    from worq._wire import decode_envelope, encode_task
    from worq.models import TaskMessage

    codec = make_codec("json")
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    plain = TaskMessage(id="a", name="t", queue="q", args=(1,), kwargs={})
    traced = TaskMessage(id="a", name="t", queue="q", args=(1,), kwargs={}, trace=parent)
    assert b'"tp"' not in encode_task(codec, plain)
    envelope, _ = decode_envelope(encode_task(codec, traced), "a", "q")
    assert envelope.trace == parent
    odd, _ = decode_envelope(b'{"v":3,"name":"t","tp":42}\n{"args":[1]}', "a", "q")
    assert odd.trace == ""


def test_when_a_task_was_due_costs_no_byte_when_its_id_says_so() -> None:
    """A worq-made id (UUIDv7) carries its send time: the envelope writes ``t`` only for
    another id, or a task due later (a delay); an envelope without either reads None."""
    from worq import get_broker
    from worq._ids import id_time_ms, new_task_id

    broker = get_broker("memory://wire-due", "q")
    before = time.time_ns() // 1_000_000
    d = broker.queue().job()
    Task(broker.queue().job, id="mine")()
    later = Task(broker.queue().job, delay=60)()
    after = time.time_ns() // 1_000_000
    assert later is not None
    sent = id_time_ms(d.id)
    assert sent is not None
    assert before <= sent <= after
    line = broker.taskqueue.next_in_line()
    assert line == (d.id, b'{"v":3,"name":"job"}')
    found = {}
    while (taken := broker.taskqueue.get(0)) is not None:
        found[taken.task_id] = decode_envelope(taken.message, taken.task_id, "q")[0]
    assert found[d.id].due_ms == sent
    mine_due = found["mine"].due_ms
    assert mine_due is not None
    assert before <= mine_due <= after
    broker.taskqueue.discard_pending()
    assert id_time_ms(new_task_id(5)) == 5
    assert id_time_ms("mine") is None
    assert id_time_ms("0" * 32) is None
    legacy, _ = decode_envelope(b'{"v":3,"name":"job"}\n{"args":[]}', "0" * 32, "q")
    assert legacy.due_ms is None
    delayed = TaskMessage(id=d.id, name="job", queue="q", due_ms=sent + 60_000)
    assert b'"t":' in encode_task(JsonCodec(), delayed)
