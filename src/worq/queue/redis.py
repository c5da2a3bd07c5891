"""Redis task queue and result store.

Workers and clients in different processes, on different machines, share a
queue through one Redis server. Every multi-key step is one Lua script
(``redis_scripts/*.lua``, loaded once and run by SHA; redis-py reloads a
script transparently after a server restart), so no step is ever half
applied whatever process dies when. All keys of a queue share one hash tag,
so the layout works unchanged on Redis Cluster.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

import redis
import redis.exceptions

from worq._events import logger
from worq._urls import mask_url
from worq.const import DEFAULT, TaskStatus
from worq.exceptions import BackendUnavailable, WorqError
from worq.queue._redis_keys import RedisKeys
from worq.typing import DeferResult, Taken

__all__ = ["TaskQueue"]

MAX_BLOCK = 1.0
"""Longest single blocking wait for a result before checking the task still exists.

While a task runs, a waiter wakes at its lease deadline instead, to see at
once whether the lease lapsed."""

DROP_BATCH = 1000
"""Most tasks one discard_pending script call drops, cascading to dependants;
bounds how long the server is blocked, whatever the depth of a pending chain."""

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a TCP connection before calling the server unreachable."""

_SCRIPTS = (
    "enqueue",
    "defer",
    "get",
    "heartbeat",
    "set_result",
    "retry",
    "reclaim",
    "pop_result",
    "status",
    "discard_pending",
    "size",
)


def _load_sources() -> dict[str, str]:
    folder = importlib.resources.files("worq.queue.redis_scripts")
    lib = folder.joinpath("_lib.lua").read_text("utf-8")
    return {name: lib + folder.joinpath(f"{name}.lua").read_text("utf-8") for name in _SCRIPTS}


_SOURCES = _load_sources()


class TaskQueue:
    """Redis-backed task queue; see :class:`worq.typing.TaskQueue`.

    Args:
        url: ``redis://[user:password@]host[:port][/db]``, ``rediss://…`` (TLS;
            ``?ssl_ca_certs=/path`` names a CA) or ``unix:///path.sock?db=N``.
            Query parameters redis-py's ``from_url`` understands are passed on.
        name: Queue name; must not contain braces (they delimit the hash tag).
        initial_result_timeout: Seconds a taken task's result placeholder lives
            before the first heartbeat must extend it.
        redis_factory: Class whose ``from_url`` makes the client.

    Raises:
        ValueError: The URL is malformed (the message masks any password).
    """

    def __init__(
        self,
        url: str,
        name: str = DEFAULT,
        initial_result_timeout: float = 60,
        redis_factory: type[redis.Redis] = redis.Redis,
    ) -> None:
        self._url = url
        self._masked_url = mask_url(url)
        self._name = name
        self.keys = RedisKeys.for_queue(name)
        self.initial_result_timeout = initial_result_timeout
        try:
            # socket_timeout=None: blocking waits (BLMOVE, BLPOP) last as long as
            # asked; redis-py's default (5 s in recent versions) would cut them.
            # Query options in the URL take precedence over these.
            self.redis = redis_factory.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=None,
            )
            pool = self.redis.connection_pool
            pool.connection_class(**pool.connection_kwargs)  # checks the options, no I/O
        except (ValueError, TypeError) as exc:
            raise ValueError(f"malformed Redis URL {self._masked_url!r}: {exc}") from None
        self._scripts = {name: self.redis.register_script(src) for name, src in _SOURCES.items()}

    @property
    def url(self) -> str:
        return self._url

    @property
    def name(self) -> str:
        return self._name

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn redis-py errors into worq errors that name the server and queue."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable(
                f"cannot reach Redis at {self._masked_url} (queue {self._name!r}): {exc}; "
                "check that the server is running and the URL is right"
            ) from exc
        except redis.exceptions.RedisError as exc:
            raise WorqError(
                f"Redis at {self._masked_url} refused a command for queue {self._name!r}: {exc}"
            ) from exc

    def _run(self, script: str, keys: Sequence[str], args: Sequence[str | bytes | float]) -> Any:
        """Run one of the Lua scripts; every key it is given shares the queue's hash tag."""
        with self._guard():
            return self._scripts[script](keys=keys, args=args)

    def enqueue_task(
        self, task_id: str, message: bytes, *, keep_result: bool, track: bool, delay: float = 0
    ) -> bool:
        k = self.keys
        keys = [k.task(task_id), k.result(task_id), k.queue, k.delayed]
        flags = ["1" if keep_result else "0", "1" if track else "0"]
        args: list[str | bytes | float] = [k.prefix, task_id, message, *flags, _delay_ms(delay)]
        return bool(self._run("enqueue", keys, args))

    def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult:
        k = self.keys
        keys = [k.task(task_id), k.result(task_id), k.queue]
        for arg_id in argument_ids:
            keys += [k.task(arg_id), k.result(arg_id), k.deps(arg_id)]
        args = [k.prefix, task_id, message, "1" if keep_result else "0", *argument_ids]
        reply = self._run("defer", keys, args)
        return DeferResult(reply.decode() if isinstance(reply, bytes) else reply)

    def get(self, timeout: float | None) -> Taken | None:
        k = self.keys
        keys = [k.queue, k.claimed, k.delayed, k.claimed_since]
        lease_ms = _ms(self.initial_result_timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        claimed: bytes | str = ""
        while True:
            reply = self._run("get", keys, [k.prefix, lease_ms, claimed])
            if reply[0] != b"":
                task_id, message, attempt, lease = reply
                return Taken(
                    task_id.decode("utf-8", "backslashreplace"), message, attempt, lease.decode()
                )
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            next_due = None if reply[1] < 0 else reply[1] / 1000
            waits = [t for t in (remaining, next_due) if t is not None]
            block = min(waits) if waits else 0  # 0: until a task arrives
            with self._guard():
                moved = self.redis.blmove(
                    k.queue,
                    k.claimed,
                    block,  # type: ignore[arg-type]  # typed int; Redis takes fractions
                    "RIGHT",
                    "LEFT",
                )
            claimed = "" if moved is None else cast(bytes, moved)

    def size(self) -> int:
        k = self.keys
        return int(self._run("size", [k.queue, k.delayed, k.wakes, k.deferred], []))

    def discard_pending(self) -> int:
        k = self.keys
        keys = [k.queue, k.delayed, k.wakes, k.deferred, k.dropping]
        found, left = self._run("discard_pending", keys, [k.prefix, "start", DROP_BATCH])
        while left:
            _, left = self._run("discard_pending", keys, [k.prefix, "continue", DROP_BATCH])
        return int(found)

    def get_arguments(self, task_id: str) -> dict[str, bytes]:
        with self._guard():
            fields = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.task(task_id)))
        return {
            field[4:].decode(): value
            for field, value in fields.items()
            if field.startswith(b"arg:")
        }

    def set_task_timeout(self, task_id: str, timeout: float, lease: str | None = None) -> bool:
        k = self.keys
        args: list[str | bytes | float] = [k.prefix, task_id, lease or "", _ms(timeout)]
        return bool(self._run("heartbeat", [k.processing], args))

    def get_status(self, task_id: str) -> TaskStatus | None:
        k = self.keys
        reply = self._run("status", [k.task(task_id), k.result(task_id), k.processing], [task_id])
        if reply is None:
            return None
        try:
            return TaskStatus(reply.decode())
        except ValueError:  # something other than worq wrote the hash
            return None

    def set_result(
        self, task_id: str, message: bytes, timeout: float, lease: str | None = None
    ) -> bool:
        k = self.keys
        keys = [
            k.task(task_id), k.result(task_id), k.deps(task_id), k.processing,
            k.queue, k.delayed, k.deferred,
        ]  # fmt: skip
        args: list[str | bytes | float] = [k.prefix, task_id, message, _ms(timeout), lease or ""]
        return bool(self._run("set_result", keys, args))

    def retry_task(self, task_id: str, lease: str, delay: float) -> bool:
        k = self.keys
        args: list[str | bytes | float] = [k.prefix, task_id, lease, _delay_ms(delay)]
        return bool(self._run("retry", [k.processing], args))

    def reclaim(self, limit: int) -> list[Taken]:
        return self._reclaim(limit, "")

    def reclaim_task(self, task_id: str) -> Taken | None:
        taken = self._reclaim(1, task_id)
        return taken[0] if taken else None

    def _reclaim(self, limit: int, task_id: str) -> list[Taken]:
        k = self.keys
        lease_ms = _ms(self.initial_result_timeout)
        keys = [k.processing, k.claimed, k.claimed_since, k.queue]
        flat = self._run("reclaim", keys, [k.prefix, limit, lease_ms, task_id])
        return [
            Taken(flat[i].decode(), flat[i + 1], int(flat[i + 2]), flat[i + 3].decode())
            for i in range(0, len(flat), 4)
        ]

    def pop_result(self, task_id: str, timeout: float | None) -> bytes | TaskStatus | None:
        k = self.keys
        result_key = k.result(task_id)
        keys = [result_key, k.task(task_id), k.processing]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            reply = self._run("pop_result", keys, [task_id])
            state = reply[0]
            if state == b"ready":
                return cast(bytes, reply[1])
            if state == b"expired":
                return TaskStatus.EXPIRED
            if state == b"lapsed":
                return TaskStatus.LAPSED
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            lease_left_ms = int(reply[1])
            block = MAX_BLOCK if lease_left_ms < 0 else min(MAX_BLOCK, lease_left_ms / 1000 + 0.01)
            if remaining is not None:
                block = min(block, remaining)
            with self._guard():
                popped = self.redis.blpop([result_key], timeout=max(block, 0.01))
            if popped is not None:
                return cast(bytes, popped[1])

    def ping(self) -> bool:
        """True when the server answers.

        Raises:
            BackendUnavailable: It does not.
        """
        with self._guard():
            return bool(self.redis.ping())

    def log_all_worq(self, show_expiring: bool = False) -> list[dict[str, Any]]:
        """Log (event ``redis.key``) and return every key of this queue: a debugging aid.

        Args:
            show_expiring: Include keys with a TTL (results waiting to be taken).
        """
        found = []
        with self._guard():
            for key in self.redis.scan_iter(match=self.keys.pattern, count=500):
                ttl = self.redis.pttl(key)
                if ttl >= 0 and not show_expiring:
                    continue
                kind = self.redis.type(key)
                entry = {
                    "key": key.decode(),
                    "type": kind.decode() if isinstance(kind, bytes) else kind,
                    "ttl_ms": ttl,
                }
                logger.info("redis.key", queue=self._name, **entry)
                found.append(entry)
        return found

    def close(self) -> None:
        """Close the connection pool."""
        self.redis.close()

    def __repr__(self) -> str:
        return f"<redis TaskQueue {self._masked_url} [{self._name}]>"


def _ms(seconds: float) -> int:
    """A timeout in milliseconds; never 0, which Redis reads as "no timeout"."""
    return max(1, round(seconds * 1000))


def _delay_ms(seconds: float) -> int:
    """A delay in milliseconds; 0 means runnable now."""
    return max(0, round(seconds * 1000))
