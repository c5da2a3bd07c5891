"""Client API: Task options, Queue paths, TaskSpace, Deferred."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from worq import Deferred, DuplicateTask, ResultNotReady, Task, TaskFailure, TaskSpace, get_broker
from worq.const import TaskStatus
from worq.models import TaskOptions
from worq.task import Queue

POSITIVE = "must be a finite number of seconds > 0 and at most 315360000 (ten years), got"
NON_NEGATIVE = "must be a finite number of seconds >= 0 and at most 315360000 (ten years), got"
BAD_ID = "task id must be a non-empty str of at most 512 bytes (UTF-8), got"


@pytest.fixture
def queue(url: str) -> Queue:
    """A Queue with no worker behind it."""
    return get_broker(url).queue()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_error": "ignore"}, "on_error must be Task.FAIL ('fail') or Task.PASS ('pass')"),
        ({"result_timeout": 0}, f"result_timeout {POSITIVE} 0"),
        ({"result_timeout": "1"}, f"result_timeout {POSITIVE} '1'"),
        ({"result_timeout": math.inf}, f"result_timeout {POSITIVE} inf"),
        ({"heartrate": -1}, f"heartrate {POSITIVE} -1"),
        ({"heartrate": True}, f"heartrate {POSITIVE} True"),
        ({"heartrate": math.nan}, f"heartrate {POSITIVE} nan"),
        ({"time_limit": math.inf}, f"time_limit {POSITIVE} inf"),
        ({"time_limit": 1e300}, f"time_limit {POSITIVE} 1e+300"),
        ({"retry_backoff": math.inf}, f"retry_backoff {NON_NEGATIVE} inf"),
        ({"retry_backoff_max": -math.inf}, f"retry_backoff_max {NON_NEGATIVE} -inf"),
        ({"delay": math.inf}, f"delay {NON_NEGATIVE} inf"),
        ({"ignore_result": 1}, "ignore_result must be True or False, got 1"),
        ({"id": 42}, f"{BAD_ID} 42"),
        ({"id": ""}, f"{BAD_ID} ''"),
        ({"id": "é" * 257}, f"{BAD_ID} 'éé"),
    ],
)
def test_task_rejects_bad_options(queue: Queue, options: dict[str, Any], message: str) -> None:
    """Each bad option value is a ValueError naming the task, its queue and what is expected."""
    where = "task 'func' on queue 'default': "
    with pytest.raises(ValueError, match="^" + re.escape(where + message)):
        Task(queue.func, **options)


def test_bad_ids_are_refused_at_send(queue: Queue) -> None:
    """An id function returning an empty or oversized id is refused before anything is stored."""
    for bad in ("", "x" * 513):
        with pytest.raises(ValueError, match=r"^task 'func' on queue 'default': task id must be"):
            Task(queue.func, id=lambda bad=bad: bad)()
    with pytest.raises(ValueError, match=r"^queue 'default': task id must be a non-empty str"):
        get_broker(queue._broker.url).queue(id="")
    assert len(queue) == 0
    assert Task(queue.func, id="x" * 512)().id == "x" * 512


def test_task_needs_a_queue() -> None:
    """Task(func) instead of Task(q.func) says how to call it."""
    with pytest.raises(
        ValueError, match=r"Task needs a Queue naming the task, e\.g\. Task\(q\.func\)"
    ):
        Task(print)  # type: ignore[call-overload]  # the mistake under test


def test_task_options_and_with_options(queue: Queue) -> None:
    """with_options copies the task with some options changed and validates the rest."""
    task = Task(queue.ns.func, id="fixed", heartrate=5)
    clone = task.with_options({"result_timeout": 10, "on_error": Task.PASS})
    assert (clone.name, clone.id) == ("ns.func", "fixed")
    assert clone.options.result_timeout == 10
    assert clone.options.on_error == "pass"
    assert clone.options.heartrate == 5
    assert task.options.result_timeout == 3600
    with pytest.raises(ValueError, match=r"unknown task options \['colour'\]"):
        task.with_options({"colour": "red"})


def test_task_id_string_and_function(queue: Queue) -> None:
    """A fixed id is used as is; an id function gets the task's arguments."""
    assert Task(queue.func, id="abc")(1).id == "abc"
    by_args = Task(queue.func, id=lambda a, b=0: f"job-{a}-{b}")
    assert by_args(1, b=2).id == "job-1-2"


def test_task_id_function_must_return_str(queue: Queue) -> None:
    """An id function returning a non-string is refused before anything is stored."""
    with pytest.raises(ValueError, match="returned 7: it must return a str"):
        Task(queue.func, id=lambda: 7)()  # type: ignore[arg-type, return-value]  # the mistake under test
    assert len(queue) == 0


def test_duplicate_task_id(queue: Queue) -> None:
    """A second task with a queued id raises DuplicateTask and stores nothing."""
    first = Task(queue.func, id="same")(1)
    with pytest.raises(DuplicateTask) as raised:
        Task(queue.func, id="same")(2)
    assert raised.value == DuplicateTask(
        "func", "default", "same", "cannot enqueue task with duplicate id"
    )
    assert isinstance(raised.value, TaskFailure)
    assert len(queue) == 1
    assert first.status == TaskStatus.ENQUEUED


def test_queue_paths_and_repr(queue: Queue) -> None:
    """Attribute access builds dotted task paths; repr shows path and queue name."""
    assert repr(queue.foo) == "<Queue foo [default]>"
    assert repr(queue.foo.bar) == "<Queue foo.bar [default]>"
    with pytest.raises(AttributeError):
        queue._private  # noqa: B018  # the attribute access is the test


def test_queue_equality(url: str) -> None:
    """Queues on the same broker are equal whatever their paths; other queues are not."""
    broker = get_broker(url)
    assert broker.queue().foo == broker.queue().bar
    assert get_broker(url).queue() == broker.queue()
    assert get_broker(url, "other").queue() != broker.queue()
    assert hash(broker.queue().foo) == hash(broker.queue())


def test_queue_len_and_clear(queue: Queue) -> None:
    """len(q) counts waiting tasks; del q[:] discards them and their waiters see expiry."""
    waiting = [queue.func(n) for n in range(3)]
    assert len(queue) == 3
    del queue[:]
    assert len(queue) == 0
    assert waiting[0].status is None
    with pytest.raises(ValueError, match=r"delitem is only valid with a full slice"):
        del queue[1:]


def test_queue_default_options(url: str) -> None:
    """Options given to a Queue are the defaults of its tasks; bad ones are refused."""
    queue = get_broker(url).queue(result_timeout=5, on_error=Task.PASS)
    assert repr(queue.func) == "<Queue func [default]>"
    with pytest.raises(ValueError, match=r"unknown task options \['retry'\]"):
        get_broker(url).queue(retry=3)


def test_taskspace_names() -> None:
    """Tasks are named by their space's dotted path; the decorator returns the function."""
    ts = TaskSpace("a.b")

    def f() -> int:
        return 1

    assert ts.task(f) is f
    assert ts.task(name="alias")(f) is f
    assert sorted(ts.tasks) == ["a.b.alias", "a.b.f"]
    assert TaskSpace().task(f) is f


def test_deferred_before_and_after_result(queue: Queue) -> None:
    """A Deferred without a value is falsy, raises AttributeError on .value, waits False."""
    res: Deferred[Any] = queue.func(1)
    assert not res
    assert not res.has_value()
    with pytest.raises(AttributeError, match=r"has no value yet \(status enqueued; wait\(\) was"):
        res.value  # noqa: B018  # the attribute access is the test
    assert res.wait(0) is False
    assert res.status == TaskStatus.ENQUEUED
    assert repr(res) == f"<Deferred func [default:{res.id}] enqueued>"
    with pytest.raises(ResultNotReady):
        res.broker.pop_result(res)
    with pytest.raises(KeyError):  # ResultNotReady is the KeyError WorQ 1.1 raised
        res.broker.pop_result(res)


def test_task_starts_from_queue_defaults(url: str) -> None:
    """Task overrides only the options it is given; the rest come from its queue."""
    q = get_broker(url).queue(result_timeout=5, id="fixed", on_error=Task.PASS)
    task = Task(q.func, heartrate=2)
    assert task.id == "fixed"
    assert task.options == TaskOptions(on_error="pass", result_timeout=5, heartrate=2)
    assert Task(q.func, id="other", on_error=Task.FAIL).options.on_error == "fail"
