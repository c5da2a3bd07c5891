"""A newcomer's usual mistakes, each answered with what happened and what to do."""

from __future__ import annotations

import threading
import time
import traceback
from decimal import Decimal
from typing import Any

import attrs
import pytest
from structlog.testing import capture_logs

from tests import process_tasks
from worq import (
    NoValueYet,
    SerializationError,
    Task,
    TaskFailure,
    TaskSpace,
    get_broker,
    get_queue,
)
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool
from worq.testing import WAIT, eventually, thread_worker

orders = TaskSpace("orders")


@orders.task
def price(sku: str) -> Decimal:
    return Decimal("1.5")


@orders.task
def prices(skus: list[str]) -> list[Decimal]:
    return [Decimal("1.5") for _ in skus]


def test_no_such_task_says_what_the_worker_exposes(url: str) -> None:
    """The error keeps WorQ 1.1's text; a note names the queue, the count, the nearest names."""
    broker = get_broker(url)
    broker.expose(orders)
    with capture_logs() as logs, thread_worker(broker):
        res = get_queue(url).orders.pirce("A-1")
        assert res.wait(WAIT)
    failure = res.outcome()
    assert isinstance(failure, TaskFailure)
    assert str(failure) == f"orders.pirce [default:{res.id}] no such task"
    assert failure.__notes__ == [
        "the worker of queue 'default' exposes 2 tasks; did you mean 'orders.price' or "
        "'orders.prices'? (check the task's name, and that the worker's broker exposes it: "
        "broker.expose(taskspace))"
    ]
    shown = "".join(traceback.format_exception(failure))
    assert "did you mean 'orders.price'" in shown
    unknown = [e for e in logs if e["event"] == "task.unknown"]
    assert [(e["exposed"], e["suggestions"]) for e in unknown] == [
        (2, ["orders.price", "orders.prices"])
    ]
    started = [e for e in logs if e["event"] == "pool.started"]
    assert started[0]["tasks"] == ["orders.price", "orders.prices"]


def test_value_before_the_outcome_explains_itself(url: str) -> None:
    """Reading .value too early: an AttributeError saying status, wait and likely cause."""
    q = get_queue(url)
    res = q.orders.price("A-1")
    with pytest.raises(AttributeError) as raised:
        res.value  # noqa: B018  # the attribute access is the test
    assert isinstance(raised.value, NoValueYet)
    message = str(raised.value)
    assert message.startswith(
        f"orders.price [default:{res.id}] has no value yet (status enqueued; wait() was not called)"
    )
    assert "no pool has taken it from queue 'default' at " in message
    assert "is a worker running on that queue" in message
    assert not res.wait(0.05)
    with pytest.raises(NoValueYet, match=r"; waited [\d.]+s in wait\(\)\)") as again:
        res.value  # noqa: B018  # the attribute access is the test
    waited = float(str(again.value).split("; waited ")[1].split("s in wait()")[0])
    assert waited >= 0.05
    shown = "".join(traceback.format_exception(again.value))
    assert "Did you mean" not in shown
    del q[:]


@attrs.frozen
class Priced:
    """What a task function returns; passed to submit by mistake."""

    amount: Decimal


def test_submit_of_a_value_names_the_mistake(url: str) -> None:
    """submit(price(x)) is a TypeError saying to pass the function and its arguments."""
    q = get_queue(url)
    with pytest.raises(TypeError) as raised:
        q.submit(Priced(Decimal(1)), "A-1")  # type: ignore[arg-type]  # the mistake under test
    assert str(raised.value) == (
        "submit expects a task function, got a Priced instance: pass the function and its "
        "arguments, submit(price, x), not its result, submit(price(x))"
    )
    assert len(q) == 0


@pytest.mark.parametrize(
    ("value", "hinted"),
    [
        (lambda: 1, False),
        (iter([1]), True),  # list iterators do pickle
        ((x for x in [1]), False),
        (__import__("threading").Lock(), False),
        (__import__("socket").socket(), False),
        (Decimal("1").as_integer_ratio, True),  # so do bound methods
        (__import__("collections").OrderedDict(a=1), True),
        (complex(1, 2), True),
    ],
)
def test_pickle_hint_only_when_pickle_could(url: str, value: Any, hinted: bool) -> None:
    """'or use serializer=pickle' is suggested only for values pickle can encode."""
    q = get_queue(url)
    try:
        with pytest.raises(SerializationError) as raised:
            q.orders.price(value)
    finally:
        close = getattr(value, "close", None)
        if callable(close):
            close()
    assert ("or use serializer='pickle'" in str(raised.value)) is hinted
    assert len(q) == 0


def test_open_file_is_not_pointed_at_pickle(url: str, tmp_path: Any) -> None:
    """An open file cannot be pickled either: no pickle hint."""
    q = get_queue(url)
    with (tmp_path / "f").open("w") as handle, pytest.raises(SerializationError) as raised:
        q.orders.price(handle)
    assert "pickle" not in str(raised.value)


def test_pool_logs_what_it_serves(url: str) -> None:
    """pool.started lists the exposed task names."""
    broker = get_broker(url)
    broker.expose(orders)
    with capture_logs() as logs:
        pool = WorkerPool(broker)
        pool.start(timeout=0.05)
        pool.stop()
    started = [e for e in logs if e["event"] == "pool.started"]
    assert started[0]["tasks"] == ["orders.price", "orders.prices"]


def test_task_submit_sets_options_for_one_call(url: str) -> None:
    """Task(q, **options).submit(fn, ...) sends fn with those options, typed like q.submit."""
    broker = get_broker(url)
    broker.expose(orders)
    q = get_queue(url)
    with thread_worker(broker):
        res = Task(q, id="nightly", retries=3, result_timeout=60).submit(price, "A-1")
        assert res.id == "nightly"
        assert res.task.options is not None
        assert (res.task.options.retries, res.task.options.result_timeout) == (3, 60)
        assert res.wait(WAIT)
        assert res.value == Decimal("1.5")
        later = Task(q, delay=0.05).submit(prices, ["A", "B"])
        assert later.status == "delayed"
        assert later.wait(WAIT)
        assert later.value == [Decimal("1.5"), Decimal("1.5")]
        assert Task(q, ignore_result=True).submit(price, "A-1") is None
    with pytest.raises(TypeError, match="submit expects a task function"):
        Task(q).submit(Decimal(1))  # type: ignore[arg-type]  # the mistake under test


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_idle_pool_stops_at_once(url: str, kind: str) -> None:
    """stop() on an idle pool ends its workers' waits at once, not when their timeout runs out."""
    pool: WorkerPool | ProcessPool
    if kind == "thread":
        pool = WorkerPool(get_broker(url), workers=2)
        pool.start(timeout=60)
    else:
        pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=2)
        pool.start(timeout=60, handle_sigterm=False)
        eventually(lambda: len(pool.worker_pids()), 2)
    started = time.monotonic()
    pool.stop()
    assert time.monotonic() - started < 5  # the waits were 60 s long


def test_busy_pool_still_finishes_its_task(url: str) -> None:
    """Interrupting the waits leaves a running task alone: it finishes and is stored."""
    release, running = threading.Event(), threading.Event()

    def slow() -> str:
        running.set()
        release.wait(WAIT)
        return "finished"

    broker = get_broker(url)
    broker.expose(slow)
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=60)
    res = get_queue(url).slow()
    assert running.wait(WAIT)
    stopper = threading.Thread(target=pool.stop)
    stopper.start()
    release.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert res.wait(WAIT)
    assert res.value == "finished"
