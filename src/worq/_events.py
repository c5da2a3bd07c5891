"""Structured lifecycle events.

worq logs one event per lifecycle step under stable names (``task.enqueued``,
``task.started``, ``pool.started``, …) with flat keys (``task_id``,
``task_name``, ``queue``, ``pid``). The library never configures logging:

- when the application has configured structlog (``structlog.configure``),
  events go through it, with every key intact;
- otherwise they go to the standard library logger ``"worq"`` as one line
  each, so they follow ``logging`` configuration (``logging.basicConfig``,
  levels, handlers) and stay quiet below WARNING by default, as a library's
  logs should.

Events are emitted on hot paths (every task sent, started, finished), and
most are filtered out, so an event below the configured level must cost about
a method call. Where events go, and which levels pass, are therefore worked
out once per configuration (a :class:`_Route`) instead of at each event;
each event only checks that structlog's configuration is still the one its
route was built from, then the level, and only an event that passes gets its
task keys computed and a dict of fields built.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from logging import CRITICAL, DEBUG, ERROR, INFO, NOTSET, WARNING
from typing import Any, Protocol

import attrs
import structlog

from worq.models import Envelope

__all__ = ["logger", "task_fields"]


class _StructlogConfig(Protocol):
    """The settings of structlog's global configuration that decide an event's route.

    Each is compared by identity at each event: ``configure`` and
    ``reset_defaults`` replace them (``capture_logs`` edits the processor
    list in place, which a route built on that list sees without being
    rebuilt).
    """

    @property
    def is_configured(self) -> bool: ...

    @property
    def default_wrapper_class(self) -> object: ...

    @property
    def default_processors(self) -> object: ...

    @property
    def default_context_class(self) -> object: ...

    @property
    def logger_factory(self) -> object: ...


class _PublicConfig:
    """structlog's configuration read through its public functions.

    For a structlog whose private configuration object is not the one
    :func:`_structlog_config` knows: correct, but each read is a call, and
    ``get_config`` builds a dict.
    """

    @property
    def is_configured(self) -> bool:
        return structlog.is_configured()

    @property
    def default_wrapper_class(self) -> object:
        return structlog.get_config()["wrapper_class"]

    @property
    def default_processors(self) -> object:
        return structlog.get_config()["processors"]

    @property
    def default_context_class(self) -> object:
        return structlog.get_config()["context_class"]

    @property
    def logger_factory(self) -> object:
        return structlog.get_config()["logger_factory"]


def _structlog_config() -> _StructlogConfig:
    """structlog's own configuration object, or the public view where it differs.

    Reading attributes of ``structlog._config._CONFIG`` (what ``configure``
    sets) costs a few attribute loads per event, where the public
    ``is_configured()`` and ``get_config()`` cost calls. It is private API,
    though: a structlog that lacks it, or any attribute worq reads, gets
    :class:`_PublicConfig`.
    """
    try:
        from structlog._config import _CONFIG
    except ImportError:
        return _PublicConfig()
    names = (
        "is_configured",
        "default_wrapper_class",
        "default_processors",
        "default_context_class",
        "logger_factory",
    )
    if all(hasattr(_CONFIG, name) for name in names):
        return _CONFIG
    return _PublicConfig()


_FILTERING_LEVELS: dict[object, int] = {
    structlog.make_filtering_bound_logger(level): level
    for level in (NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL)
}
"""The minimum level of each wrapper class ``make_filtering_bound_logger`` returns.

It returns one prebuilt class per standard level, so a configured wrapper
class found here filters by a level known in advance: worq drops an event
below it without building anything. Any other wrapper class (structlog's
stdlib ``BoundLogger``, a subclass, the application's own) may filter in
ways worq cannot see, so it is given every event, as structlog would be.
"""


@attrs.frozen(kw_only=True)
class _Route:
    """Where events go under one structlog configuration, and which levels pass.

    Immutable and replaced whole, so that a thread reading it while another
    re-resolves sees one configuration's route, never a mix. The identities
    of the settings it was built from tell an event whether it still holds.

    Attributes:
        configured: ``structlog.is_configured()`` then; None for the route
            that holds before the first event, which matches no configuration.
        wrapper_class: structlog's wrapper class then, which decides the level.
        processors: structlog's processors then; with ``context_class`` and
            ``logger_factory``, what ``bound`` was built from.
        context_class: structlog's context class then.
        logger_factory: structlog's logger factory then.
        stdlib: The ``worq`` logger when events go to the standard library:
            its level decides at each event, as ``logging`` caches it and
            clears that cache on ``setLevel``.
        min_level: The lowest level structlog lets through; unused with
            ``stdlib``.
        bound: The bound logger the events are emitted through. Built once
            per route, which is safe: it only holds the processors (the list
            itself, so ``capture_logs`` still works), context class and the
            factory's logger, and structlog's contextvars are merged by a
            processor at each event.
    """

    configured: bool | None
    wrapper_class: object
    processors: object
    context_class: object
    logger_factory: object
    stdlib: logging.Logger | None
    min_level: int
    bound: Any  # the configured wrapper class: structlog types it as a protocol without log methods


_UNRESOLVED = _Route(
    configured=None,
    wrapper_class=None,
    processors=None,
    context_class=None,
    logger_factory=None,
    stdlib=None,
    min_level=NOTSET,
    bound=None,
)


Observer = Callable[[str, Envelope, dict[str, Any]], None]
"""Sees an event about a task: its name, the task, its other keys."""


class _EventLogger:
    """Sends each event to structlog if it is configured, else to stdlib ``logging``.

    Each level's method takes the event's name, optionally the task it is
    about (positional), and its other keys. The task's keys (see
    :func:`task_fields`) come first in the event, and are computed only if
    the event passes the level check; a key also given by name wins.
    """

    def __init__(self, config: _StructlogConfig) -> None:
        self.observers: list[Observer] = []
        """Called with every info, warning or error event about a task, whatever the
        logging level: how metrics count runs (see :mod:`worq.metrics`)."""
        self._config = config
        self._route = _UNRESOLVED
        self._stdlib_logger = logging.getLogger("worq")
        # Built once: it depends on nothing structlog's configuration sets.
        self._stdlib_bound: Any = structlog.wrap_logger(
            self._stdlib_logger,
            processors=[structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)],
            wrapper_class=structlog.stdlib.BoundLogger,
            context_class=dict,
        ).bind()

    def debug(self, event: str, task: Envelope | None = None, /, **fields: Any) -> None:
        """Log at DEBUG: per-call detail (``task.enqueued``), hidden unless asked for."""
        route = self._passing(DEBUG)
        if route is not None:
            self._emit(route, "debug", event, task, fields)

    def info(self, event: str, task: Envelope | None = None, /, **fields: Any) -> None:
        """Log at INFO: the normal course of tasks and pools."""
        if task is not None and self.observers:
            self._observe(event, task, fields)
        route = self._passing(INFO)
        if route is not None:
            self._emit(route, "info", event, task, fields)

    def warning(self, event: str, task: Envelope | None = None, /, **fields: Any) -> None:
        """Log at WARNING: something failed and worq recovers (a retry, an outage)."""
        if task is not None and self.observers:
            self._observe(event, task, fields)
        route = self._passing(WARNING)
        if route is not None:
            self._emit(route, "warning", event, task, fields)

    def error(self, event: str, task: Envelope | None = None, /, **fields: Any) -> None:
        """Log at ERROR: a task or worker was lost, or worq's own handling failed."""
        if task is not None and self.observers:
            self._observe(event, task, fields)
        route = self._passing(ERROR)
        if route is not None:
            self._emit(route, "error", event, task, fields)

    def _observe(self, event: str, task: Envelope, fields: dict[str, Any]) -> None:
        for observer in list(self.observers):
            observer(event, task, fields)

    def _passing(self, level: int) -> _Route | None:
        """The current route if an event at ``level`` passes it, else None.

        Only the two settings that decide the route's level are checked here,
        so a filtered-out event costs two attribute comparisons and a level
        check; the settings ``bound`` depends on are checked in :meth:`_emit`.
        """
        route = self._route
        config = self._config
        if (
            config.is_configured is not route.configured
            or config.default_wrapper_class is not route.wrapper_class
        ):
            route = self._resolve()
        if route.stdlib is None:
            return route if level >= route.min_level else None
        return route if route.stdlib.isEnabledFor(level) else None

    def _emit(
        self, route: _Route, method: str, event: str, task: Envelope | None, fields: dict[str, Any]
    ) -> None:
        """Emit an event that passed the level check through the route's bound logger."""
        config = self._config
        if (
            config.default_processors is not route.processors
            or config.default_context_class is not route.context_class
            or config.logger_factory is not route.logger_factory
        ):
            route = self._resolve()
        if task is not None:
            fields = {**task_fields(task), **fields}
        getattr(route.bound, method)(event, **fields)

    def _resolve(self) -> _Route:
        """Build the route for structlog's current configuration and keep it.

        The settings are read before the bound logger is built: should the
        configuration change in between, the route records the older
        settings, so the next event sees the change and resolves again.
        """
        config = self._config
        configured = config.is_configured
        wrapper_class = config.default_wrapper_class
        processors = config.default_processors
        context_class = config.default_context_class
        logger_factory = config.logger_factory
        if configured:
            bound: Any = structlog.get_logger("worq").bind()
            stdlib = None
            min_level = _FILTERING_LEVELS.get(wrapper_class, NOTSET)
        else:
            bound = self._stdlib_bound
            stdlib = self._stdlib_logger
            min_level = NOTSET
        route = _Route(
            configured=configured,
            wrapper_class=wrapper_class,
            processors=processors,
            context_class=context_class,
            logger_factory=logger_factory,
            stdlib=stdlib,
            min_level=min_level,
            bound=bound,
        )
        self._route = route
        return route


logger = _EventLogger(_structlog_config())


def task_fields(message: Envelope) -> dict[str, Any]:
    """The keys every event about one task carries, in the order events show them."""
    return {
        "task_id": message.id,
        "task_name": message.name,
        "queue": message.queue,
        "pid": os.getpid(),
    }
