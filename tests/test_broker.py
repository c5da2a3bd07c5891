"""Broker behaviour end to end: exposing, arguments, results, bad input, events."""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
from structlog.testing import capture_logs

from tests.outcomes import outcome
from worq import (
    Deferred,
    DependencyUnavailable,
    SerializationError,
    Task,
    TaskFailure,
    TaskSpace,
    get_broker,
    get_queue,
)
from worq.core import Broker
from worq.runner import ArgumentMismatch, ExposedTask
from worq.testing import thread_worker

ts = TaskSpace("geo")


@attrs.frozen
class Point:
    """An attrs value travelling as task argument and result."""

    x: int
    y: Decimal


@ts.task
def move(p: Point, dx: int = 1) -> Point:
    return Point(p.x + dx, p.y)


@ts.task
def echo(value: Any) -> Any:
    return value


@ts.task
def total(values: list[int]) -> int:
    return sum(values)


@ts.task
def fail(message: str) -> int:
    raise ValueError(message)


@ts.task
def unencodable() -> object:
    return object()


@ts.task
def describe(value: object) -> str:
    return repr(value)


@pytest.fixture
def broker(url: str) -> Iterator[Broker]:
    """A broker exposing the geo tasks, with a worker thread running."""
    worker_broker = get_broker(url)
    worker_broker.expose(ts)
    with thread_worker(worker_broker):
        yield worker_broker


def test_expose_refuses_silent_replacement(url: str) -> None:
    """Exposing a second task under a taken name needs replace=True."""
    broker = get_broker(url)
    broker.expose(ts)
    with pytest.raises(ValueError, match=r"task 'geo\.move' is already exposed on queue 'default'"):
        broker.expose(ts)
    broker.expose(ts, replace=True)
    with pytest.raises(ValueError, match="has no __name__"):
        broker.expose(Decimal(1))  # type: ignore[arg-type]  # the mistake under test


def test_attrs_arguments_and_results(broker: Broker, url: str) -> None:
    """A task annotated with an attrs class receives and returns instances over JSON."""
    q = get_queue(url)
    moved = q.submit(move, Point(1, Decimal("2.5")), dx=2)
    assert outcome(moved) == Point(3, Decimal("2.5"))
    untyped = q.geo.move(Point(1, Decimal("0")))
    assert outcome(untyped) == Point(2, Decimal("0"))


def test_deferred_arguments_at_any_depth(broker: Broker, url: str) -> None:
    """Deferreds inside lists, tuples and dicts are replaced by their values."""
    q = get_queue(url)
    a, b = q.submit(echo, 1), q.submit(echo, "two")
    nested = q.submit(echo, {"list": [a.as_arg(), (b.as_arg(), 3)], "key": {"deep": a.as_arg()}})
    assert outcome(nested) == {"list": [1, ("two", 3)], "key": {"deep": 1}}


def test_completed_deferred_as_argument(broker: Broker, url: str) -> None:
    """A Deferred whose value is already here travels as that value."""
    q = get_queue(url)
    done = q.submit(echo, 5)
    assert outcome(done) == 5
    assert outcome(q.submit(total, [done.as_arg(), 1])) == 6


def test_failed_dependency_fails_or_passes(broker: Broker, url: str) -> None:
    """A failed argument fails the dependant by default; Task.PASS hands it over."""
    q = get_queue(url)
    bad = q.submit(fail, "boom")
    failing = q.submit(total, [bad.as_arg()])
    passing = Task(q.geo.describe, on_error=Task.PASS)(bad)
    expected = TaskFailure("geo.fail", "default", bad.id, "ValueError: boom")
    assert outcome(failing) == TaskFailure(
        "geo.total", "default", failing.id, f"dependency failed: {expected}"
    )
    assert outcome(passing) == repr(expected)
    assert outcome(bad) == expected


def test_completed_failed_deferred_as_argument(broker: Broker, url: str) -> None:
    """A failure already held locally fails the dependant too, unless Task.PASS."""
    q = get_queue(url)
    bad = q.submit(fail, "early")
    expected = outcome(bad)
    assert isinstance(expected, TaskFailure)
    failing = q.submit(total, [bad.as_arg()])
    assert outcome(failing).error == f"dependency failed: {expected}"
    assert outcome(Task(q.geo.describe, on_error=Task.PASS)(bad)) == repr(expected)


def test_dependency_without_result_is_refused(broker: Broker, url: str) -> None:
    """A Deferred whose result was taken elsewhere cannot feed a task; nothing is stored."""
    q = get_queue(url)
    first = q.submit(echo, 1)
    assert outcome(first) == 1
    stale: Deferred[int] = Deferred(broker, first.id, first.name)
    with pytest.raises(
        DependencyUnavailable, match=f"the result of task\\(s\\) \\['{first.id}'\\]"
    ):
        q.submit(total, [stale.as_arg()])
    assert len(q) == 0


def test_arguments_that_do_not_fit(broker: Broker, url: str) -> None:
    """Wrong arguments fail the task with the TypeError or conversion error text."""
    q = get_queue(url)
    too_many = q.geo.total([1], 2)
    assert outcome(too_many).error.startswith("TypeError: too many positional arguments")
    wrong_shape = q.geo.move({"x": "not an int"})
    assert "argument 'p' does not fit its annotation Point" in outcome(wrong_shape).error


def _labelled(p: Point, *, label: str) -> str:
    return f"{label}: {p}"


def test_positional_arguments_bind_as_the_signature_says(broker: Broker) -> None:
    """A call with positional arguments only is bound by position, without
    Signature.bind: defaults, conversions and mismatches come out the same."""
    exposed = ExposedTask.from_callable("geo.move", move)
    at = {"x": 1, "y": Decimal(2)}
    assert exposed.positional is not None
    assert exposed.bind(broker.codec, (at,), {})() == Point(2, Decimal("2"))
    assert exposed.bind(broker.codec, (at, 3), {})() == Point(4, Decimal("2"))
    with pytest.raises(ArgumentMismatch, match="argument 'dx' does not fit its annotation int"):
        exposed.bind(broker.codec, (at, "far"), {})
    with pytest.raises(ArgumentMismatch, match="missing a required argument: 'p'"):
        exposed.bind(broker.codec, (), {})
    with pytest.raises(ArgumentMismatch, match="too many positional arguments"):
        exposed.bind(broker.codec, (at, 1, 2), {})
    keyword_only = ExposedTask.from_callable("geo.labelled", _labelled)
    assert keyword_only.positional is None
    call = keyword_only.bind(broker.codec, (at,), {"label": "at"})
    assert call() == f"at: {Point(1, Decimal('2'))}"


def test_unencodable_argument(url: str) -> None:
    """An argument JSON cannot carry is refused at the call site, naming task and type."""
    q = get_queue(url)
    with pytest.raises(SerializationError) as raised:
        q.geo.echo({"fine": [1, object()]})
    message = str(raised.value)
    assert message.startswith("cannot send task 'geo.echo' to queue 'default': ")
    assert "'object'" in message
    assert len(q) == 0


def test_unencodable_result(broker: Broker, url: str) -> None:
    """A result JSON cannot carry becomes a TaskFailure saying so."""
    q = get_queue(url)
    bad = q.submit(unencodable)
    assert "result could not be encoded" in outcome(bad).error
    assert outcome(q.submit(echo, 1)) == 1


def test_garbage_message_fails_task_not_worker(broker: Broker, url: str) -> None:
    """Undecodable bytes in the queue fail that task with a reason; the worker goes on."""
    planted = broker.taskqueue
    q = get_queue(url)
    with capture_logs() as logs:
        assert planted.enqueue_task("garbage", b"\x00not json", keep_result=True, track=True)
        victim: Deferred[Any] = Deferred(broker, "garbage", "?")
        failure = outcome(victim)
        assert outcome(q.submit(echo, "still alive")) == "still alive"
    assert "message could not be decoded (json)" in failure.error
    assert any(e["event"] == "task.rejected" and e["task_id"] == "garbage" for e in logs)


class Trap:
    """Unpickling this sets a flag: it must never happen with the JSON codec."""

    sprung = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_spring, ())


def _spring() -> None:
    Trap.sprung = True


def test_pickle_payload_is_never_unpickled(broker: Broker) -> None:
    """With the default JSON codec, planted pickle bytes are rejected, not run."""
    broker.taskqueue.enqueue_task("evil", pickle.dumps(Trap()), keep_result=True, track=True)
    failure = outcome(Deferred(broker, "evil", "?"))
    assert isinstance(failure, TaskFailure)
    assert not Trap.sprung


def test_pickle_serializer_on_request(url: str) -> None:
    """serializer='pickle' carries objects JSON cannot, end to end."""
    worker = get_broker(url, serializer="pickle")
    worker.expose(ts)
    with thread_worker(worker):
        q = get_queue(url, serializer="pickle")
        assert outcome(q.geo.describe(Decimal)) == repr(Decimal)
    with pytest.raises(ValueError, match="unknown serializer 'yaml'"):
        get_broker(url, serializer="yaml")


@pytest.mark.parametrize(
    ("bad_url", "message"),
    [
        ("ftp://example.com/x", "unsupported task queue URL 'ftp://example.com/x'"),
        (
            "redis-cluster://u:secret@h:1/0",
            "unsupported task queue URL 'redis-cluster://u:***@h:1/0'",
        ),
        ("nonsense", "unsupported task queue URL 'nonsense'"),
        (
            "redis://u:secret@h:6379/abc",
            "malformed Redis URL 'redis://u:***@h:6379/abc': the database must be a number "
            "(redis://host:6379/0, or ?db=0), got 'abc'",
        ),
        (
            "unix:///run/redis.sock?db=two",
            "malformed Redis URL 'unix:///run/redis.sock?db=two': the database must be a number",
        ),
        ("rediss://h/0/1", "malformed Redis URL 'rediss://h/0/1': the database must be a number"),
    ],
)
def test_bad_urls(bad_url: str, message: str) -> None:
    """An unknown scheme or database is a ValueError naming the URL, its password masked."""
    with pytest.raises(ValueError, match="^" + re.escape(message)) as raised:
        get_broker(bad_url)
    assert "secret" not in str(raised.value)


def test_lifecycle_events(broker: Broker, url: str) -> None:
    """Each step logs a stable event carrying task id, name and queue."""
    q = get_queue(url)
    with capture_logs() as logs:
        good = q.submit(echo, 1)
        bad = q.submit(fail, "x")
        outcome(good)
        outcome(bad)
    seen = {(e["event"], e.get("task_id")) for e in logs}
    for event, task_id in [
        ("task.enqueued", good.id),
        ("task.started", good.id),
        ("task.succeeded", good.id),
        ("task.enqueued", bad.id),
        ("task.failed", bad.id),
    ]:
        assert (event, task_id) in seen, (event, logs)
    for entry in logs:
        if entry["event"].startswith("task."):
            assert entry["queue"] == "default"
            assert entry["task_name"] in {"geo.echo", "geo.fail"}
            assert isinstance(entry["pid"], int)


def test_submit_on_a_queue_with_a_target(broker: Broker, url: str) -> None:
    """A registered task keeps its full name when submitted through a sub-queue."""
    q = get_queue(url, target="geo")
    assert outcome(q.submit(echo, 1)) == 1
    assert outcome(q.echo(2)) == 2


def test_plain_annotations_are_not_coerced(broker: Broker, url: str) -> None:
    """An int parameter sent a float or a str fails instead of truncating or parsing."""
    q = get_queue(url)
    for wrong in (1.5, "7", True):
        failure = outcome(q.geo.total([wrong]))
        assert isinstance(failure, TaskFailure)
        assert "expected int" in failure.error


def test_failure_text_stays_small_along_a_chain(broker: Broker, url: str) -> None:
    """Each link of a failed chain names its failed dependency and the root cause once."""
    q = get_queue(url)
    head = q.submit(fail, "boom")
    chain = [q.submit(total, [head.as_arg()])]
    for _ in range(200):
        chain.append(q.submit(total, [chain[-1].as_arg()]))
    errors = [outcome(link).error for link in chain]
    root = f"geo.fail [default:{head.id}] ValueError: boom"
    assert errors[0] == f"dependency failed: {root}"
    before_last = chain[-2]
    assert errors[-1] == (
        f"dependency failed: geo.total [default:{before_last.id}]; root cause: {root}"
    )
    assert len({len(error) for error in errors[1:]}) == 1  # constant size past the first link
