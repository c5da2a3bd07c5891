"""A pool's scheduler: fires its broker's schedules, racing every other pool safely.

Every pool runs one (unless told not to); none of them coordinates with the
others. Each looks at the schedules' states in the backend, and for every
scheduled time past a schedule's last fire asks the backend to fire it
(``TaskQueue.fire_schedule``), which does so atomically only while the last
fire is older: the first pool to ask sends the task, the others get
``DONE``. So every time fires once, whichever pools run, die or restart.

Which past times were *missed*, for the schedules' ``catch_up`` policy, is
told by a mark in the backend that every scheduler raises each time it looks
(:data:`ALIVE_FOR` ahead): a time after the mark came while no scheduler ran.
A time within :data:`ON_TIME_GRACE` of now is never missed, however long the
pools were down: it is the one due now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

from worq._events import logger
from worq.core import Broker
from worq.exceptions import PoolError, WorqError
from worq.pool._outages import back_off, describe
from worq.schedules import CATCH_UP_LIMIT, Schedule, format_ms
from worq.typing import FireResult

__all__ = ["ALIVE_FOR", "ON_TIME_GRACE", "Scheduler", "check_schedules", "start_scheduler"]

ALIVE_FOR = 5.0
"""Seconds past each look at the states that a scheduler counts as running."""

ON_TIME_GRACE = 1.0
"""Seconds a scheduled time stays due, never missed, whatever the alive mark says."""

_MAX_NAP = 1.0
"""Longest wait between two looks: other pools' fires and a stop are seen this soon."""


class Scheduler:
    """Fires ``broker``'s schedules from a thread of its own, until :meth:`close`.

    Args:
        broker: The pool's broker, whose schedules it fires.
        pool_name: For the thread's name and the events.
        task_names: The tasks the pool runs: a schedule of any other task is
            refused here, when the pool starts.
        clock: Wall-clock time in seconds (``time.time``); tests give their own.

    Raises:
        PoolError: A schedule's task is not among ``task_names``.
    """

    def __init__(
        self,
        broker: Broker,
        pool_name: str,
        task_names: Collection[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_schedules(broker, pool_name, task_names)
        self._schedules = list(broker.schedules.values())
        self._broker = broker
        self._pool = pool_name
        self._clock = clock
        self._closing = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"{pool_name}-scheduler", daemon=True
        )

    def start(self) -> None:
        """Register the schedules (so that listings show them once the pool started;
        a look that finds them unregistered, the backend down now, registers them),
        then fire them in a thread."""
        try:
            self._broker.register_schedules(self._now_ms())
        except WorqError as exc:
            logger.warning(
                "backend.unavailable", queue=self._broker.name, pool=self._pool,
                error=describe(exc), step="register_schedules",
            )  # fmt: skip
        self._thread.start()

    def close(self) -> None:
        """Stop firing; returns once the thread has stopped."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            try:
                nap = self.tick(self._now_ms())
            except Exception as exc:  # an outage, or a reply nobody expected: try again
                back_off(self._broker, failures, exc, self._closing)
                failures += 1
                continue
            if failures:
                logger.info("backend.available", queue=self._broker.name, pool=self._pool)
                failures = 0
            self._closing.wait(nap)

    def tick(self, now_ms: int) -> float:
        """Fire what is due at ``now_ms``; seconds until something may be due next."""
        states, alive_until = self._broker.schedule_states(now_ms + round(ALIVE_FOR * 1000))
        if any(s.name not in states for s in self._schedules):  # never registered, or dropped
            self._broker.register_schedules(now_ms)
            states, alive_until = self._broker.schedule_states()
        for schedule in self._schedules:
            self._fire_due(schedule, states[schedule.name].last_ms, now_ms, alive_until)
        soonest = min(s.next_after(now_ms) for s in self._schedules)
        return min(_MAX_NAP, max(0.0, (soonest - now_ms) / 1000))

    def _fire_due(self, schedule: Schedule, last_ms: int, now_ms: int, alive_until: int) -> None:
        """Send or pass over each time of ``schedule`` due since ``last_ms``, as its
        ``catch_up`` policy says of the missed ones, oldest first."""
        due, older_left_out = schedule.due(last_ms, now_ms, CATCH_UP_LIMIT)
        if not due:
            return
        grace = round(ON_TIME_GRACE * 1000)
        missed = [t for t in due if t > alive_until and now_ms - t > grace]
        if schedule.catch_up == "all" or not missed:
            sent = due
        elif schedule.catch_up == "latest":
            sent = [t for t in due if t not in missed or t == missed[-1]]
        else:
            sent = [t for t in due if t not in missed]
        skipped = [t for t in due if t not in sent]
        # overlap="skip" looks at the fire before these: the times caught up with
        # together go together, each would otherwise see the one before it waiting.
        results = [self._fire(schedule, t, now_ms, first=i == 0) for i, t in enumerate(sent)]
        if skipped and (not sent or skipped[-1] > sent[-1]):
            results.append(self._broker.fire_schedule(schedule, skipped[-1], send=False)[0])
        if all(result is FireResult.DONE for result in results):
            return  # another pool got there first, and logs what it skipped
        fields = {"queue": self._broker.name, "schedule": schedule.name, "pool": self._pool}
        if older_left_out:
            logger.warning(
                "schedule.skipped", reason="catch_up_limit", before=format_ms(due[0]),
                limit=CATCH_UP_LIMIT, policy=schedule.catch_up, **fields,
            )  # fmt: skip
        if skipped:
            logger.info(
                "schedule.skipped", reason="missed", times=len(skipped),
                first=format_ms(skipped[0]), last=format_ms(skipped[-1]),
                policy=schedule.catch_up, **fields,
            )  # fmt: skip

    def _fire(self, schedule: Schedule, fire_ms: int, now_ms: int, *, first: bool) -> FireResult:
        result, task_id = self._broker.fire_schedule(schedule, fire_ms, check_overlap=first)
        fields = {
            "queue": self._broker.name, "schedule": schedule.name, "task_id": task_id,
            "scheduled_time": format_ms(fire_ms), "pool": self._pool,
        }  # fmt: skip
        if result is FireResult.FIRED:
            logger.info("schedule.fired", lateness_s=(now_ms - fire_ms) / 1000, **fields)
        elif result is FireResult.SKIPPED:
            logger.info("schedule.skipped", reason="overlap", policy=schedule.overlap, **fields)
        return result


def check_schedules(broker: Broker, pool_name: str, task_names: Collection[str]) -> None:
    """Refuse a schedule of a task the pool does not run.

    Raises:
        PoolError: Naming the schedule, its task, the pool and what to do.
    """
    for schedule in broker.schedules.values():
        if schedule.task not in task_names:
            raise PoolError(
                f"schedule {schedule.name!r} sends task {schedule.task!r}, which pool "
                f"{pool_name!r} does not run (queue {broker.name!r}): expose the task on "
                "the pool's broker (broker.expose(...)) or remove the schedule"
            )


def start_scheduler(
    broker: Broker, pool_name: str, task_names: Collection[str], enabled: bool
) -> Scheduler | None:
    """A pool's running scheduler; None when it has none to run (``enabled`` false,
    or the broker has no schedules).

    Raises:
        PoolError: A schedule's task is not among ``task_names``.
    """
    if not enabled or not broker.schedules:
        return None
    scheduler = Scheduler(broker, pool_name, task_names)
    scheduler.start()
    return scheduler
