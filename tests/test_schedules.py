"""Periodic tasks: declaring schedules, and firing each scheduled time once.

The policies are driven by a frozen clock: each test calls ``Scheduler.tick``
with the time it chooses, so hours pass (and daylight saving time changes)
without sleeping. Real pools firing real schedules are tested at the end,
and across processes killed mid-run in tests/faults/test_schedule_pools.py.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from worq import TaskSpace, get_broker
from worq.const import TaskStatus
from worq.core import Broker
from worq.exceptions import PoolError
from worq.pool._scheduler import ALIVE_FOR, Scheduler
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.schedules import CATCH_UP_LIMIT, ScheduleError, format_ms
from worq.testing import RedisServer, eventually

reports = TaskSpace("reports")


@reports.task
def daily(region: str, top: int = 10) -> str:
    return f"{region}:{top}"


@reports.task
def ping() -> str:
    return "pong"


def ms(text: str, tz: str = "UTC") -> int:
    """``"2026-12-07 14:05:00"`` in ``tz`` as milliseconds since the epoch."""
    when = dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(tz))
    return round(when.timestamp() * 1000)


SECOND = 1000
MINUTE = 60 * SECOND


@pytest.fixture
def broker(url: str) -> Iterator[Broker]:
    made = get_broker(url, "periodic")
    made.expose(reports)
    yield made
    made.close()


def queued(broker: Broker) -> list[str]:
    """The ids of the tasks waiting in the queue, oldest first (taken, then settled)."""
    ids = []
    while (taken := broker.take(0)) is not None:
        envelope, _ = taken
        ids.append(envelope.id)
        broker.record_outcome(envelope, broker.runner.encode_outcome(envelope, None))
    return ids


def scheduler(broker: Broker) -> Scheduler:
    return Scheduler(broker, "test-pool", broker.runner.task_names())


# -- declaring -----------------------------------------------------------------


def test_a_schedule_is_declared_with_what_it_sends(broker: Broker) -> None:
    """The declared schedule keeps its task, arguments and policies; names default
    to the task's; every fire's task id names the schedule and its UTC time."""
    every = broker.schedule(daily, every=dt.timedelta(minutes=5), args=("eu",))
    cron = broker.schedule(
        daily, cron="0 9 * * 1-5", tz="Europe/Paris", kwargs={"region": "us", "top": 3},
        name="weekday-us", catch_up="all", overlap="allow",
    )  # fmt: skip
    assert (every.name, every.task, every.args, every.every) == (
        "reports.daily", "reports.daily", ("eu",), dt.timedelta(minutes=5),
    )  # fmt: skip
    assert (cron.kwargs, cron.tz, cron.catch_up, cron.overlap) == (
        {"region": "us", "top": 3}, "Europe/Paris", "all", "allow",
    )  # fmt: skip
    assert set(broker.schedules) == {"reports.daily", "weekday-us"}
    assert every.task_id(ms("2026-12-07 14:05:00")) == "schedule:reports.daily:2026-12-07T14:05:00Z"
    assert cron.task_id(ms("2026-12-07 14:05:00.250")) == (
        "schedule:weekday-us:2026-12-07T14:05:00.250Z"
    )
    assert broker.schedule("reports.ping", every=30, name="by-name").every == dt.timedelta(
        seconds=30
    )


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (
            lambda b: b.schedule(ping, cron="61 * * * *"),
            "invalid cron expression '61 \\* \\* \\* \\*'",
        ),
        (lambda b: b.schedule(ping, cron="every day"), "invalid cron expression"),
        (lambda b: b.schedule(ping, cron="* * * * *", tz="Mars/Olympus"), "unknown time zone"),
        (lambda b: b.schedule(ping, every=0), "every must be between"),
        (lambda b: b.schedule(ping, every=-5), "every must be between"),
        (lambda b: b.schedule(ping, every=dt.timedelta(0)), "every must be between"),
        (lambda b: b.schedule(ping, every="10"), "every must be a timedelta or a number"),
        (lambda b: b.schedule(ping), "exactly one of cron= .* and every="),
        (lambda b: b.schedule(ping, cron="* * * * *", every=5), "exactly one of cron="),
        (lambda b: b.schedule(daily, every=5, args=()), "do not fit the task"),
        (lambda b: b.schedule(daily, every=5, args=("eu", 1, 2)), "do not fit the task"),
        (lambda b: b.schedule(daily, every=5, kwargs={"zone": "eu"}), "do not fit the task"),
        (lambda b: b.schedule(daily, every=5, args=(object(),)), "arguments cannot be sent"),
        (lambda b: b.schedule(ping, every=5, catch_up="never"), "catch_up must be one of"),
        (lambda b: b.schedule(ping, every=5, overlap="queue"), "overlap must be one of"),
        (lambda b: b.schedule(ping, every=5, name=""), "non-empty str"),
    ],
)
def test_a_bad_schedule_is_refused_naming_it(
    broker: Broker, declare: Callable[[Any], object], message: str
) -> None:
    """Every mistake raises ScheduleError (a ValueError) at declaration, naming the
    schedule and its task, and nothing is declared."""
    with pytest.raises(ScheduleError, match=message) as raised:
        declare(broker)
    assert "schedule " in str(raised.value)
    assert "reports." in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert broker.schedules == {}


def test_two_schedules_of_one_name_are_refused(broker: Broker) -> None:
    broker.schedule(ping, every=10)
    with pytest.raises(ScheduleError, match=r"'reports\.ping'.*has a schedule of that name"):
        broker.schedule(ping, every=20)
    broker.schedule(ping, every=20, name="ping-slow")
    assert set(broker.schedules) == {"reports.ping", "ping-slow"}


def start_thread_pool(broker: Broker) -> Callable[[], None]:
    pool = ThreadPool(broker)
    pool.start(timeout=0.05)
    return pool.stop


def start_asyncio_pool(broker: Broker) -> Callable[[], None]:
    pool = AsyncioPool(broker)
    pool.start(timeout=0.05)
    return pool.stop


def start_process_pool(broker: Broker) -> Callable[[], None]:
    pool = ProcessPool(broker, init_func=get_broker, workers=1)
    pool.start(timeout=0.05, handle_sigterm=False)
    return pool.stop


@pytest.mark.parametrize("start", [start_thread_pool, start_asyncio_pool, start_process_pool])
def test_a_schedule_of_a_task_the_pool_does_not_run_fails_its_start(
    url: str, start: Callable[[Broker], Callable[[], None]]
) -> None:
    """Each pool refuses, at start, a schedule whose task its broker does not expose."""
    bare = get_broker(url, "periodic")
    bare.schedule("reports.ping", every=10)
    with pytest.raises(PoolError, match=r"schedule 'reports\.ping' sends task 'reports\.ping'"):
        start(bare)()


# -- firing each time once -------------------------------------------------------


def test_racing_schedulers_fire_each_time_once(broker: Broker, url: str) -> None:
    """Three schedulers (three pools' brokers) ticking at the same instants send one
    task per scheduled time; a new schedule starts from now, not from the past."""
    brokers = [broker, *(get_broker(url, "periodic") for _ in range(2))]
    for each in brokers[1:]:
        each.expose(reports)
    for each in brokers:
        each.schedule(daily, every=dt.timedelta(minutes=1), args=("eu",), overlap="allow")
    schedulers = [scheduler(each) for each in brokers]
    start = ms("2026-12-07 14:00:30")
    for now in range(start, start + 5 * MINUTE, 10 * SECOND):
        for racer in schedulers:
            racer.tick(now)
    expected = [f"schedule:reports.daily:2026-12-07T14:0{m}:00Z" for m in range(1, 6)]
    assert queued(broker) == expected
    state = broker.taskqueue.schedule_states()[0]["reports.daily"]
    assert (state.last_ms, state.next_ms) == (ms("2026-12-07 14:05:00"), ms("2026-12-07 14:06:00"))
    assert state.task_id == expected[-1]


def test_a_restarted_scheduler_neither_repeats_nor_forgets(broker: Broker, url: str) -> None:
    """A pool restarted (a new broker and scheduler) after a short stop fires the
    times it was down for once each, and never again the ones fired before."""
    broker.schedule(ping, every=10, overlap="allow")
    first = scheduler(broker)
    start = ms("2026-12-07 14:00:05")
    first.tick(start)
    first.tick(start + 10 * SECOND)  # fires 14:00:10
    again = get_broker(url, "periodic")
    again.expose(reports)
    again.schedule(ping, every=10, overlap="allow")
    restarted = scheduler(again)
    restarted.tick(start + 10 * SECOND)  # the same instant: nothing new
    restarted.tick(start + 32 * SECOND)  # 14:00:20 and :30, within the alive mark
    assert queued(broker) == [
        f"schedule:reports.ping:2026-12-07T14:00:{s}Z" for s in ("10", "20", "30")
    ]


def downtime(broker: Broker, catch_up: str) -> list[str]:
    """Fire a 1-minute schedule at 14:00, let every pool be down until 14:10:00.5,
    and return what the first tick after that sent."""
    broker.schedule(ping, every=60, catch_up=catch_up)  # type: ignore[call-overload]  # policy under test
    before = scheduler(broker)
    before.tick(ms("2026-12-07 13:59:59"))
    before.tick(ms("2026-12-07 14:00:00.200"))
    assert queued(broker) == ["schedule:reports.ping:2026-12-07T14:00:00Z"]
    after = scheduler(broker)
    with capture_logs() as logs:
        after.tick(ms("2026-12-07 14:10:00.500"))
    sent = queued(broker)
    skipped = [log for log in logs if log["event"] == "schedule.skipped"]
    if catch_up == "all":
        assert skipped == []
    else:
        assert [(log["reason"], log["policy"], log["first"]) for log in skipped] == [
            ("missed", catch_up, "2026-12-07T14:01:00Z")
        ]
    return sent


def test_catch_up_latest_sends_the_most_recent_missed_time(broker: Broker) -> None:
    """Down from 14:00 to 14:10 (the alive mark lapsed at 14:00:05): 14:01 to 14:09
    were missed, and only 14:09 is sent; 14:10, due now, is sent too."""
    assert downtime(broker, "latest") == [
        "schedule:reports.ping:2026-12-07T14:09:00Z",
        "schedule:reports.ping:2026-12-07T14:10:00Z",
    ]


def test_catch_up_none_sends_only_the_time_due_now(broker: Broker) -> None:
    assert downtime(broker, "none") == ["schedule:reports.ping:2026-12-07T14:10:00Z"]


def test_catch_up_all_sends_every_missed_time(broker: Broker) -> None:
    assert downtime(broker, "all") == [
        f"schedule:reports.ping:2026-12-07T14:{m:02d}:00Z" for m in range(1, 11)
    ]


def test_catch_up_all_is_capped(broker: Broker) -> None:
    """After a long downtime catch_up="all" sends the CATCH_UP_LIMIT latest times,
    warns of the older ones it skipped, and none of them fires later."""
    broker.schedule(ping, every=1, catch_up="all")
    first = scheduler(broker)
    start = ms("2026-12-07 14:00:00.500")
    first.tick(start)
    with capture_logs() as logs:
        first.tick(start + 3600 * SECOND)
    sent = queued(broker)
    assert len(sent) == CATCH_UP_LIMIT
    assert sent[-1] == "schedule:reports.ping:2026-12-07T15:00:00Z"
    oldest_sent = ms("2026-12-07 15:00:00") - (CATCH_UP_LIMIT - 1) * SECOND
    assert sent[0] == f"schedule:reports.ping:{format_ms(oldest_sent)}"
    warned = [log for log in logs if log.get("reason") == "catch_up_limit"]
    assert len(warned) == 1
    assert warned[0]["log_level"] == "warning"
    first.tick(start + 3600 * SECOND + 200)
    assert queued(broker) == []


def test_a_stalled_scheduler_still_sends_every_time(broker: Broker) -> None:
    """Times that came while a scheduler ran (within its alive mark), late because
    it stalled, are due, not missed: each is sent, even with catch_up="none"."""
    broker.schedule(ping, every=1, catch_up="none", overlap="allow")
    ticking = scheduler(broker)
    start = ms("2026-12-07 14:00:00.100")
    ticking.tick(start)
    ticking.tick(start + round((ALIVE_FOR - 1) * SECOND))  # stalled ~4 s, within the mark
    assert queued(broker) == [f"schedule:reports.ping:2026-12-07T14:00:0{s}Z" for s in range(1, 5)]


def test_overlap_skip_waits_for_the_previous_fire(broker: Broker) -> None:
    """While the previous fire's task waits or runs, overlap="skip" sends nothing for
    the next time (schedule.skipped); once it finished, the next time is sent."""
    broker.schedule(ping, every=10)
    ticking = scheduler(broker)
    start = ms("2026-12-07 14:00:05")
    ticking.tick(start)
    ticking.tick(start + 10 * SECOND)  # 14:00:10 sent
    taken = broker.take(0)
    assert taken is not None
    assert taken[0].id == "schedule:reports.ping:2026-12-07T14:00:10Z"
    assert broker.status(taken[0]) is TaskStatus.PROCESSING
    with capture_logs() as logs:
        ticking.tick(start + 20 * SECOND)  # 14:00:20 skipped: the first still runs
    assert [(log["event"], log["reason"], log["scheduled_time"]) for log in logs] == [
        ("schedule.skipped", "overlap", "2026-12-07T14:00:20Z")
    ]
    assert broker.take(0) is None
    broker.record_outcome(taken[0], broker.runner.encode_outcome(taken[0], "pong"))
    ticking.tick(start + 30 * SECOND)
    assert queued(broker) == ["schedule:reports.ping:2026-12-07T14:00:30Z"]


def test_overlap_allow_sends_every_time(broker: Broker) -> None:
    broker.schedule(ping, every=10, overlap="allow")
    ticking = scheduler(broker)
    start = ms("2026-12-07 14:00:05")
    for step in range(4):
        ticking.tick(start + step * 10 * SECOND)
    assert queued(broker) == [
        f"schedule:reports.ping:2026-12-07T14:00:{s}Z" for s in ("10", "20", "30")
    ]


def test_a_fired_event_names_the_schedule_time_task_and_lateness(broker: Broker) -> None:
    broker.schedule(ping, every=10)
    ticking = scheduler(broker)
    ticking.tick(ms("2026-12-07 14:00:05"))
    with capture_logs() as logs:
        ticking.tick(ms("2026-12-07 14:00:10.250"))
    (fired,) = logs
    assert fired["event"] == "schedule.fired"
    assert fired["schedule"] == "reports.ping"
    assert fired["scheduled_time"] == "2026-12-07T14:00:10Z"
    assert fired["task_id"] == "schedule:reports.ping:2026-12-07T14:00:10Z"
    assert fired["lateness_s"] == 0.25
    assert fired["queue"] == "periodic"


# -- cron and daylight saving time -------------------------------------------------


def fired_over(broker: Broker, start: int, end: int, step: int) -> list[str]:
    ticking = scheduler(broker)
    for now in range(start, end, step):
        ticking.tick(now)
    return queued(broker)


def test_cron_in_a_time_zone_across_spring_forward(broker: Broker) -> None:
    """Paris skips 02:00-03:00 on 2026-03-29: a 02:30 job fires when the clock jumps
    (03:00 CEST, 01:00 UTC), then at 02:30 CEST on the next day (00:30 UTC)."""
    broker.schedule(ping, cron="30 2 * * *", tz="Europe/Paris", overlap="allow")
    start = ms("2026-03-28 12:00:00", "Europe/Paris")
    fired = fired_over(broker, start, start + 48 * 3600 * SECOND, 10 * MINUTE)
    assert fired == [
        "schedule:reports.ping:2026-03-29T01:00:00Z",
        "schedule:reports.ping:2026-03-30T00:30:00Z",
    ]


def test_cron_in_a_time_zone_across_fall_back(broker: Broker) -> None:
    """Paris lives 02:00-03:00 twice on 2026-10-25: a job every half hour fires at
    each instant once, 02:00 and 02:30 local twice each (CEST, then CET: 00:00,
    00:30, 01:00 and 01:30 UTC), one task per instant, never one twice."""
    broker.schedule(ping, cron="*/30 * * * *", tz="Europe/Paris", overlap="allow")
    start = ms("2026-10-25 01:45:00", "Europe/Paris")
    fired = fired_over(broker, start, start + 3 * 3600 * SECOND, 5 * MINUTE)
    assert fired == [
        f"schedule:reports.ping:2026-10-25T{when}Z"
        for when in ("00:00:00", "00:30:00", "01:00:00", "01:30:00", "02:00:00", "02:30:00")
    ]


def test_format_ms_is_utc_iso_8601() -> None:
    assert format_ms(0) == "1970-01-01T00:00:00Z"
    assert format_ms(1_796_652_468_500) == "2026-12-07T14:07:48.500Z"


# -- real pools ---------------------------------------------------------------------


def test_pools_fire_a_schedule_and_run_its_tasks(url: str) -> None:
    """Two thread pools with their schedulers on run an every-0.2 s schedule: its
    tasks run, one per scheduled time, their results kept under their ids."""
    brokers = []
    pools = []
    for _ in range(2):
        broker = get_broker(url, "periodic-live")
        broker.expose(reports)
        broker.schedule(daily, every=0.2, args=("eu",), kwargs=None)
        brokers.append(broker)
        pools.append(ThreadPool(broker, workers=2))
    for pool in pools:
        pool.start(timeout=0.05)
    try:
        first = brokers[0]
        eventually(lambda: _fired(first, "reports.daily") and _completed(first) == 5, True)
    finally:
        for pool in pools:
            pool.stop()
    state = first.taskqueue.schedule_states()[0]["reports.daily"]
    fires = range(state.last_ms - 4 * 200, state.last_ms + 1, 200)
    for fire_ms in fires:
        task_id = f"schedule:reports.daily:{format_ms(fire_ms)}"
        assert first.taskqueue.get_status(task_id) is TaskStatus.COMPLETED, task_id


def _completed(broker: Broker) -> int:
    """How many of the latest 5 times of the live schedule have their result stored."""
    state = broker.taskqueue.schedule_states()[0]["reports.daily"]
    fires = range(state.last_ms - 4 * 200, state.last_ms + 1, 200)
    return sum(
        broker.taskqueue.get_status(f"schedule:reports.daily:{format_ms(t)}")
        is TaskStatus.COMPLETED
        for t in fires
    )


def test_scheduler_false_fires_nothing(url: str) -> None:
    """A pool told scheduler=False never registers or fires its broker's schedules,
    while a pool beside it, started after it, does."""
    quiet = get_broker(url, "periodic-off")
    quiet.expose(reports)
    quiet.schedule(ping, every=0.1, name="never")
    busy = get_broker(url, "periodic-off")
    busy.expose(reports)
    busy.schedule(ping, every=0.1, name="always")
    pools = [ThreadPool(quiet, scheduler=False), ThreadPool(busy)]
    for pool in pools:
        pool.start(timeout=0.05)
    try:
        eventually(lambda: _fired(busy, "always"), True)
    finally:
        for pool in pools:
            pool.stop()
    assert "never" not in busy.taskqueue.schedule_states()[0]


def _fired(broker: Broker, name: str) -> bool:
    state = broker.taskqueue.schedule_states()[0].get(name)
    return state is not None and state.task_id != ""


def test_schedules_fire_once_on_a_redis_cluster(clean_cluster_url: str) -> None:
    """On a cluster the schedule's keys live in its queue's slot: two racing
    schedulers fire each time once there too."""
    brokers = [get_broker(clean_cluster_url, "periodic") for _ in range(2)]
    try:
        for each in brokers:
            each.expose(reports)
            each.schedule(ping, every=10, overlap="allow")
        racers = [scheduler(each) for each in brokers]
        start = ms("2026-12-07 14:00:05")
        for now in range(start, start + 40 * SECOND, 5 * SECOND):
            for racer in racers:
                racer.tick(now)
        assert queued(brokers[0]) == [
            f"schedule:reports.ping:2026-12-07T14:00:{s}Z" for s in ("10", "20", "30", "40")
        ]
    finally:
        for each in brokers:
            each.close()


def test_a_scheduler_rides_out_a_redis_restart_that_lost_its_state(tmp_path: Path) -> None:
    """While Redis is down the scheduler logs backend.unavailable and retries; the
    server comes back empty (no persistence), so the schedule is registered again
    and fires on from then, each time once."""
    server = RedisServer(tmp_path)
    server.start()
    broker = get_broker(server.url, "periodic")
    broker.expose(reports)
    broker.schedule(ping, every=0.2, overlap="allow")
    pool = ThreadPool(broker, scheduler=True)
    try:
        with capture_logs() as logs:
            pool.start(timeout=0.2)
            eventually(lambda: _fired(broker, "reports.ping"), True)
            server.stop()
            eventually(lambda: any(e["event"] == "backend.unavailable" for e in logs), True)
            server.start()
            eventually(lambda: _fired(broker, "reports.ping"), True)
            # logged just after the look that fired: wait for it, do not race it
            eventually(lambda: any(e["event"] == "backend.available" for e in logs), True)
        fired = [e["scheduled_time"] for e in logs if e["event"] == "schedule.fired"]
        assert len(fired) == len(set(fired))
    finally:
        pool.stop()
        server.stop()
