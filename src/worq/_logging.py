"""Where worq's structlog events go when worq itself runs the process.

The library only emits events (see :mod:`worq._events`) and never configures
structlog: an application embedding worq decides. The ``worq`` command line
*is* the application, so it configures structlog here, in one function that a
process pool can also call in its child processes so that every process of a
worker logs the same way.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog
from structlog.typing import Processor

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "configure_logging", "configure_logging_from_environment"]

ENV_FORMAT = "WORQ_LOG_FORMAT"
ENV_LEVEL = "WORQ_LOG_LEVEL"
"""Where :func:`configure_logging` leaves its settings for spawned worker processes."""

LOG_FORMATS = ("console", "json")
"""``console``: human-readable lines; ``json``: one JSON object per line."""

LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
"""The level names the command line accepts, lowest first."""


def configure_logging(log_format: str, level: str) -> None:
    """Send structlog events at ``level`` or above to stderr, rendered as ``log_format``.

    Events go to stderr so that a command's own output on stdout stays
    parseable. Each event carries its level and an ISO-8601 UTC timestamp.
    Filtering happens in the bound logger (``make_filtering_bound_logger``),
    so events below ``level`` cost almost nothing.

    Args:
        log_format: ``"console"`` (structlog's ConsoleRenderer, coloured on a
            terminal) or ``"json"`` (one JSON object per line; tracebacks
            become structured ``exception`` fields, never extra lines).
        level: ``"debug"``, ``"info"``, ``"warning"`` or ``"error"``.

    Raises:
        ValueError: Unknown format or level.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    threshold = LOG_LEVELS.get(level)
    if threshold is None:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    rendering: list[Processor]
    if log_format == "json":
        # Tracebacks as structured data, without frame locals: those would copy
        # task arguments (secrets, personal data) into the logs.
        tracebacks = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        rendering = [tracebacks, structlog.processors.JSONRenderer()]
    else:
        # ConsoleRenderer formats exc_info itself (adding format_exc_info would
        # make it warn and lose the pretty traceback).
        rendering = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    _route_standard_logging(shared, rendering, threshold)
    structlog.configure(
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        # WriteLogger writes each line with its newline in one write, which
        # several processes sharing stderr cannot tear apart (PrintLogger's
        # print() writes the newline separately: JSON lines got glued).
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        # Not cached: a process may reconfigure (tests, a pool's children).
        cache_logger_on_first_use=False,
    )
    os.environ[ENV_FORMAT] = log_format  # inherited by the process pool's workers
    os.environ[ENV_LEVEL] = level


def _route_standard_logging(
    shared: list[Processor], rendering: list[Processor], threshold: int
) -> None:
    """Render the standard library's log records (redis-py's, an app's) like worq's events.

    One handler on the root logger, formatting with structlog's
    ``ProcessorFormatter``, so that with ``--log-format json`` every line on
    stderr is JSON, whoever logged it. It replaces the root's handlers: the
    command line is the application and owns its process's logging.
    """
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)


def configure_logging_from_environment() -> None:
    """In a worker process: log as the process that spawned it was set up to log."""
    log_format = os.environ.get(ENV_FORMAT)
    if log_format:
        configure_logging(log_format, os.environ.get(ENV_LEVEL, "info"))
