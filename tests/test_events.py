"""worq's events: where they go, what they carry, and what a filtered-out one computes."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import structlog
import structlog._config
from structlog.testing import LogCapture, capture_logs

from worq import _events
from worq._events import _EventLogger, _PublicConfig, _structlog_config, task_fields
from worq.models import Envelope

TASK = Envelope(id="t1", name="jobs.resize", queue="default")


class Collect(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def messages(self) -> list[str]:
        """The records' rendered messages, oldest first."""
        return [record.getMessage() for record in self.records]

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Watched(Envelope):
    """An envelope that records each read of the keys an event copies from it."""

    reads: ClassVar[list[str]] = []

    def __getattribute__(self, name: str) -> Any:
        if name in ("id", "name", "queue"):
            Watched.reads.append(name)
        return super().__getattribute__(name)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test starts with structlog unconfigured; the previous state comes back after."""
    was_configured, config = structlog.is_configured(), structlog.get_config()
    worq_log = logging.getLogger("worq")
    level = worq_log.level
    structlog.reset_defaults()
    yield
    structlog.contextvars.clear_contextvars()
    worq_log.setLevel(level)
    structlog.reset_defaults()
    if was_configured:
        structlog.configure(**config)


@pytest.fixture(params=["private", "public"])
def events(request: pytest.FixtureRequest) -> _EventLogger:
    """worq's logger, and one reading structlog's configuration through its public API.

    The second is what a structlog without the private configuration object
    worq reads gets: it must route events the same way.
    """
    if request.param == "private":
        return _events.logger
    return _EventLogger(_PublicConfig())


@pytest.fixture
def collect() -> Iterator[Collect]:
    """A handler on the ``worq`` logger."""
    handler = Collect()
    worq_log = logging.getLogger("worq")
    worq_log.addHandler(handler)
    try:
        yield handler
    finally:
        worq_log.removeHandler(handler)


def test_task_keys_reach_structlog_intact_and_first(events: _EventLogger) -> None:
    """A positional task adds exactly task_fields' keys, before the others, as the old call did."""
    with capture_logs() as logs:
        events.info("task.started", TASK, attempt=2)
        events.info("task.started", **task_fields(TASK), attempt=2)
        events.warning("task.failed", TASK, queue="other", error="boom")
    new, old, renamed = logs
    assert new == old
    assert new == {
        "task_id": "t1",
        "task_name": "jobs.resize",
        "queue": "default",
        "pid": os.getpid(),
        "attempt": 2,
        "event": "task.started",
        "log_level": "info",
    }
    assert list(new)[:5] == ["task_id", "task_name", "queue", "pid", "attempt"]
    assert (renamed["queue"], renamed["task_id"], renamed["log_level"]) == (
        "other",
        "t1",
        "warning",
    )


def test_events_without_a_task(events: _EventLogger) -> None:
    """An event about no task carries only its own keys."""
    with capture_logs() as logs:
        events.error("pool.reap_failed", queue="default", error="down")
        events.debug("queue.purged", queue="default", count=3)
    assert logs == [
        {"queue": "default", "error": "down", "event": "pool.reap_failed", "log_level": "error"},
        {"queue": "default", "count": 3, "event": "queue.purged", "log_level": "debug"},
    ]


def test_stdlib_follows_level_changes_at_runtime(events: _EventLogger, collect: Collect) -> None:
    """Unconfigured structlog: the ``worq`` logger's level, as set at each moment, decides."""
    worq_log = logging.getLogger("worq")
    worq_log.setLevel(logging.WARNING)
    events.info("task.started", TASK, attempt=1)
    worq_log.setLevel(logging.INFO)
    events.info("task.started", TASK, attempt=2)
    events.debug("task.enqueued", TASK, refs=[])
    worq_log.setLevel(logging.ERROR)
    events.warning("task.failed", TASK, attempt=2)
    events.error("task.expired", TASK, attempt=2)
    pid = os.getpid()
    assert collect.messages() == [
        f"task.started attempt=2 pid={pid} queue=default task_id=t1 task_name=jobs.resize",
        f"task.expired attempt=2 pid={pid} queue=default task_id=t1 task_name=jobs.resize",
    ]
    assert [record.levelno for record in collect.records] == [logging.INFO, logging.ERROR]


def test_reconfiguring_structlog_is_picked_up(events: _EventLogger, collect: Collect) -> None:
    """configure, reset_defaults, configure again: each event follows the configuration then."""
    logging.getLogger("worq").setLevel(logging.INFO)
    first, second = LogCapture(), LogCapture()
    structlog.configure(processors=[first])
    events.info("one")
    structlog.reset_defaults()
    events.info("two")
    structlog.configure(processors=[second])
    events.info("three")
    assert [e["event"] for e in first.entries] == ["one"]
    assert collect.messages() == ["two"]
    assert [e["event"] for e in second.entries] == ["three"]


def test_new_processors_or_logger_factory_are_picked_up(events: _EventLogger) -> None:
    """Configured all along, structlog gets new processors, then a new logger factory."""
    first, second = LogCapture(), LogCapture()
    structlog.configure(processors=[first])
    events.info("one")
    structlog.configure(processors=[second])
    events.info("two")
    lines, more_lines = io.StringIO(), io.StringIO()
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.WriteLoggerFactory(lines),
    )
    events.info("three", TASK)
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(more_lines))
    events.info("four")
    assert [e["event"] for e in first.entries] == ["one"]
    assert [e["event"] for e in second.entries] == ["two"]
    pid = os.getpid()
    assert lines.getvalue() == (
        f"task_id='t1' task_name='jobs.resize' queue='default' pid={pid} event='three'\n"
    )
    assert more_lines.getvalue() == "event='four'\n"


def test_a_changed_wrapper_class_changes_the_level(events: _EventLogger) -> None:
    """A filtering bound logger's level holds until the wrapper class changes."""
    capture = LogCapture()
    structlog.configure(
        processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(logging.INFO)
    )
    events.debug("hidden")
    events.info("shown at info")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    events.debug("shown at debug")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    events.warning("hidden")
    structlog.configure(wrapper_class=structlog.BoundLogger)  # not filtering: every event
    events.debug("shown unfiltered")
    assert [e["event"] for e in capture.entries] == [
        "shown at info",
        "shown at debug",
        "shown unfiltered",
    ]


def test_capture_logs_blocks_one_after_another(events: _EventLogger) -> None:
    """capture_logs edits the processor list in place: each block gets the events of its time."""
    with capture_logs() as first:
        events.info("one")
    with capture_logs() as second:
        events.info("two")
    assert [e["event"] for e in first] == ["one"]
    assert [e["event"] for e in second] == ["two"]


def test_a_filtered_event_computes_no_task_keys(
    events: _EventLogger, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the level, neither the task's attributes nor the pid are read."""
    pids: list[int] = []
    getpid = os.getpid

    def counting_getpid() -> int:
        pids.append(1)
        return getpid()

    monkeypatch.setattr(os, "getpid", counting_getpid)
    task = Watched(id="t1", name="jobs.resize", queue="default")
    Watched.reads.clear()
    logging.getLogger("worq").setLevel(logging.WARNING)
    events.debug("task.enqueued", task, refs=[])
    events.info("task.started", task, attempt=1)
    structlog.configure(
        processors=[LogCapture()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    events.debug("task.enqueued", task, refs=[])
    assert (Watched.reads, pids, collect.records) == ([], [], [])
    events.info("task.started", task, attempt=1)  # passes: the probes do see reads
    assert (Watched.reads, len(pids)) == (["id", "name", "queue"], 1)


def test_bound_contextvars_appear(events: _EventLogger) -> None:
    """Context bound after worq's logger was built still reaches each event."""
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    events.info("before")
    structlog.contextvars.bind_contextvars(pool="worq-default")
    events.info("task.started", TASK, attempt=1)
    structlog.contextvars.unbind_contextvars("pool")
    events.info("after")
    assert [e.get("pool") for e in capture.entries] == [None, "worq-default", None]


def test_a_structlog_without_the_known_config_object_uses_the_public_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The private configuration object is used only if it has every attribute worq reads."""
    assert _structlog_config() is structlog._config._CONFIG
    monkeypatch.setattr(structlog._config, "_CONFIG", object())
    assert isinstance(_structlog_config(), _PublicConfig)
