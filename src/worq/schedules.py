"""Periodic tasks: schedules declared in code, fired once per scheduled time.

A :class:`Schedule` says which task to send when: on a cron expression in a
time zone, or every so many seconds. It is declared on the broker
(:meth:`worq.core.Broker.schedule`), next to the tasks, and every pool of
that broker runs it (:mod:`worq.pool._scheduler`). Pools never agree among
themselves who fires: each scheduled time has one deterministic task id, and
the backend fires it atomically only while the schedule's stored last fire
is older (``TaskQueue.fire_schedule``), so any number of pools racing for
one time send one task, and a restarted pool neither repeats nor forgets a
fire.

Times are milliseconds since the Unix epoch throughout, what the backend
stores and compares; ``every`` schedules are aligned to the epoch (every 10
seconds fires at :00, :10, ...; every day at midnight UTC), so that every
pool computes the same times without asking anyone.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zoneinfo
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict, get_args

import attrs

from worq.models import TaskOptions

if TYPE_CHECKING:
    from croniter import croniter

__all__ = ["CATCH_UP_LIMIT", "CatchUp", "Overlap", "Schedule", "ScheduleError", "ScheduleOptions"]

CatchUp = Literal["latest", "none", "all"]
"""What a pool does with the times missed while no pool ran: send the task once,
for the most recent of them (``"latest"``), not at all (``"none"``), or once
for each (``"all"``, at most :data:`CATCH_UP_LIMIT` of them, the most recent)."""

Overlap = Literal["skip", "allow"]
"""What a fire does while the schedule's previous task has not finished (waits
in the queue or runs): nothing (``"skip"``, logged as ``schedule.skipped``), or
send the task anyway (``"allow"``)."""

CATCH_UP_LIMIT = 100
"""Most missed times one ``catch_up="all"`` schedule sends after a downtime; older
missed times are skipped (and logged), so that a long outage cannot flood the queue."""

_MIN_EVERY = 0.1
"""Shortest ``every``, in seconds: shorter than a pool's scheduler reacts to."""

_MAX_EVERY = 366 * 24 * 3600.0
"""Longest ``every``, in seconds: a year; use cron for rarer schedules."""


class ScheduleOptions(TypedDict, total=False):
    """When a schedule fires and how, as :meth:`worq.core.Broker.schedule` takes them
    (see its arguments): typed once for all of its overloads."""

    cron: str | None
    every: dt.timedelta | float | None
    tz: str
    name: str | None
    catch_up: CatchUp
    overlap: Overlap
    options: TaskOptions | None


class ScheduleError(ValueError):
    """A schedule declared wrongly: the message names it and says what to change."""


@attrs.frozen
class Schedule:
    """When to send which task, with which arguments.

    Made by :meth:`worq.core.Broker.schedule`, which checks every part; the
    attributes are what it was given.

    Attributes:
        name: Unique among the broker's schedules; part of each fire's task id.
        task: The dotted name of the task sent.
        args: Its positional arguments.
        kwargs: Its keyword arguments.
        cron: A cron expression (5 fields, or 6 with seconds), or None.
        every: The interval of an ``every`` schedule, or None.
        tz: The IANA time zone the cron expression is read in (``every`` ignores it).
        catch_up: See :data:`CatchUp`.
        overlap: See :data:`Overlap`.
        options: The options of each task sent.
    """

    name: str
    task: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    cron: str | None
    every: dt.timedelta | None
    tz: str
    catch_up: CatchUp
    overlap: Overlap
    options: TaskOptions
    _zone: zoneinfo.ZoneInfo = attrs.field(init=False, repr=False, eq=False)
    _every_ms: int = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        where = f"schedule {self.name!r} (task {self.task!r})"
        if not 0 < len(str(self.name)) <= 200 or type(self.name) is not str:
            raise ScheduleError(f"{where}: its name must be a non-empty str of at most 200 chars")
        if (self.cron is None) == (self.every is None):
            raise ScheduleError(
                f"{where}: give exactly one of cron= (a cron expression) and every= "
                "(a timedelta or seconds)"
            )
        if self.catch_up not in get_args(CatchUp):
            raise ScheduleError(
                f"{where}: catch_up must be one of {get_args(CatchUp)}, got {self.catch_up!r}"
            )
        if self.overlap not in get_args(Overlap):
            raise ScheduleError(
                f"{where}: overlap must be one of {get_args(Overlap)}, got {self.overlap!r}"
            )
        try:
            zone = zoneinfo.ZoneInfo(self.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise ScheduleError(
                f"{where}: unknown time zone {self.tz!r}: give an IANA name such as "
                "'UTC' or 'Europe/Paris'"
            ) from None
        object.__setattr__(self, "_zone", zone)
        every_ms = 0
        if self.every is not None:
            seconds = self.every.total_seconds()
            if not _MIN_EVERY <= seconds <= _MAX_EVERY:
                raise ScheduleError(
                    f"{where}: every must be between {_MIN_EVERY} s and {_MAX_EVERY:.0f} s "
                    f"(a year), got {seconds} s"
                )
            every_ms = round(seconds * 1000)
        elif not isinstance(self.cron, str) or not _croniter().is_valid(self.cron):
            raise ScheduleError(
                f"{where}: invalid cron expression {self.cron!r}: expected 5 fields "
                "(minute hour day month weekday, e.g. '*/5 * * * *') or 6 with seconds"
            )
        object.__setattr__(self, "_every_ms", every_ms)

    def latest(self, until_ms: int) -> int:
        """The latest scheduled time at or before ``until_ms``."""
        if self._every_ms:
            return until_ms - until_ms % self._every_ms
        return self._cron_step(until_ms + 1, backwards=True)

    def next_after(self, after_ms: int) -> int:
        """The first scheduled time after ``after_ms``."""
        if self._every_ms:
            return after_ms - after_ms % self._every_ms + self._every_ms
        return self._cron_step(after_ms, backwards=False)

    def due(self, after_ms: int, until_ms: int, limit: int) -> tuple[list[int], bool]:
        """The scheduled times in (``after_ms``, ``until_ms``], oldest first: at most
        the ``limit`` latest, and whether older ones were left out."""
        times: list[int] = []
        at = self.latest(until_ms)
        while at > after_ms:
            if len(times) == limit:
                return times[::-1], True
            times.append(at)
            at = self.latest(at - 1)
        return times[::-1], False

    def task_id(self, fire_ms: int) -> str:
        """The id of the task sent for the time ``fire_ms``: the same in every pool."""
        return f"schedule:{self.name}:{format_ms(fire_ms)}"

    def definition(self) -> bytes:
        """What listings show of it (``worq schedules``), as stored in the backend."""
        spec: dict[str, Any] = {"task": self.task}
        if self.cron is not None:
            spec |= {"cron": self.cron, "tz": self.tz}
        else:
            spec["every_s"] = self._every_ms / 1000
        spec |= {"catch_up": self.catch_up, "overlap": self.overlap}
        return json.dumps(spec, sort_keys=True).encode()

    def _cron_step(self, from_ms: int, *, backwards: bool) -> int:
        start = dt.datetime.fromtimestamp(from_ms / 1000, self._zone)
        steps = _croniter()(str(self.cron), start)
        found = steps.get_prev(dt.datetime) if backwards else steps.get_next(dt.datetime)
        return math.floor(found.timestamp() * 1000)


def _croniter() -> type[croniter]:
    """croniter, imported on first use: a process with no cron schedule never loads it."""
    from croniter import croniter

    return croniter


def format_ms(ms: int) -> str:
    """A time in milliseconds since the epoch as ISO 8601 in UTC, to the millisecond
    when it has any (``2026-12-07T14:05:00Z``)."""
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"
