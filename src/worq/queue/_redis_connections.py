"""Connections the Redis backend keeps open for its own round trips.

redis-py's ``Redis.execute_command`` and ``Pipeline`` cost 60 to 110 µs of
Python per call on a small virtual machine, more than the round trip itself:
each checkout from the connection pool polls the socket for stray data (a
system call) and takes two locks, and each command passes through several
layers of retry, callback and parsing. The task queue's calls are already
retried by the queue itself (under request tokens), take no response
callbacks and need no stray-data check (a connection is handed back only once
every reply it was sent has been read). So the queue keeps a stack of
connections of its own, made with the pool's class and options (TLS, unix
sockets, AUTH, the URL's query options all apply), and writes each round trip
packed in one go by hiredis (in C).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import hiredis
import redis
import redis.exceptions
from redis.connection import AbstractConnection

__all__ = ["Command", "HeldConnections", "pack"]

_forks = 0
"""How many forks this process is from the one that imported this module: a
HeldConnections made before the last fork is not this process's to use. Counted at
each fork rather than asking ``os.getpid()`` per round trip, a system call that costs
several µs on a busy virtual machine."""


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)

Command = Sequence[str | bytes | memoryview | int | float]
"""One Redis command: its name, then its arguments."""


def pack(commands: Sequence[Command]) -> bytes:
    """The commands in the Redis protocol, packed by hiredis in C.

    redis-py packs with hiredis too, behind a Python wrapper that splits and
    converts every argument again (about 15 µs a call here); its asyncio
    client packs in Python (about 25 µs)."""
    return b"".join([hiredis.pack_command(tuple(command)) for command in commands])  # type: ignore[arg-type]  # hiredis stubs type the argument as a 1-tuple


class HeldConnections:
    """A stack of open connections, one per concurrent round trip, reused for the queue's life.

    A connection whose round trip failed is dropped (a reply may be left
    unread on it); one that ended well goes back on the stack. After a fork
    the child starts with an empty stack: the parent's sockets are not its
    own to use.

    Args:
        pool: The client's pool, whose connection class and options make the
            connections.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool
        self._free: list[AbstractConnection] = []
        self._lock = threading.Lock()
        self._forks = _forks

    @contextlib.contextmanager
    def connection(self) -> Iterator[AbstractConnection]:
        """An open connection for one round trip, kept open after it unless the round trip raised.

        It is connected before it is handed out, so that the handshake's
        commands (AUTH, HELLO, SELECT...) never interleave with the caller's.

        A reply the caller reads as an error (``ResponseError``) must be read
        before leaving: only connection and timeout errors may leave replies
        unread, and any exception drops the connection.
        """
        taken = self._take()
        fresh = taken is None
        pool = self._pool
        conn: AbstractConnection = (
            pool.connection_class(**pool.connection_kwargs)
            if taken is None
            else taken  # no I/O yet
        )
        try:
            if fresh:
                conn.connect()  # type: ignore[no-untyped-call]  # untyped in redis-py
            yield conn
        except BaseException:
            conn.disconnect()  # type: ignore[no-untyped-call]  # untyped in redis-py
            raise
        with self._lock:
            if self._forks == _forks:
                self._free.append(conn)

    def _take(self) -> AbstractConnection | None:
        """A connection off the stack (open: only one whose round trip ended well is
        put back), or None when it is empty."""
        with self._lock:
            if self._forks != _forks:
                self._forks, self._free = _forks, []
            return self._free.pop() if self._free else None

    def run(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` in one write and read every reply, in order.

        Returns:
            Each command's reply, or the ``ResponseError`` the server answered
            it with (the rest still ran: there is no transaction).

        Raises:
            redis.exceptions.ConnectionError, redis.exceptions.TimeoutError:
                The round trip was cut; any of the commands may have run.
        """
        with self.connection() as conn:
            conn.send_packed_command([pack(commands)])  # type: ignore[no-untyped-call]  # untyped in redis-py
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.exceptions.ResponseError as exc:
                    replies.append(exc)
            return replies

    def close(self) -> None:
        """Close every connection on the stack.

        Like a redis-py client's ``close``, it leaves the stack usable: a later
        round trip opens a new connection. One in use now goes back on the
        stack when its round trip ends.
        """
        with self._lock:
            free, self._free = self._free, []
        for conn in free:
            conn.disconnect()  # type: ignore[no-untyped-call]  # untyped in redis-py
