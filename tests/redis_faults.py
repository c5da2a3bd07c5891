"""Faults injected where the Redis backend meets the network: its connections.

The backend writes its script calls straight to connections it holds (see
``worq.queue._redis_connections``), past ``Redis.execute_command`` and
``Pipeline``; so a test that breaks replies, refuses commands or garbles
answers does it in a ``redis.Connection`` subclass, which every round trip of
the backend goes through, pooled or held alike.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis


class Recording(redis.Connection):
    """A connection that knows which command each reply it reads answers."""

    sent: tuple[tuple[Any, ...], ...] = ()
    """The commands sent whose replies are still to be read, in order."""

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Send, then note what was sent (after: connecting sends and reads a handshake).

        Appended, not replaced: redis-py sends some commands before reading
        any reply (its handshake sends CLIENT SETINFO twice, then reads both).
        """
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]  # untyped in redis-py
        self.sent += _unpack(command if isinstance(command, bytes) else b"".join(command))

    def disconnect(self, *args: Any) -> None:
        """Forget the commands whose replies the closed socket will never bring."""
        self.sent = ()
        super().disconnect(*args)  # type: ignore[no-untyped-call]  # untyped in redis-py

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        command, self.sent = (self.sent[0], self.sent[1:]) if self.sent else ((), ())
        reply = super().read_response(*args, **kwargs)  # an error reply raises, its command read
        return self.answer(command, reply)

    def answer(self, command: tuple[Any, ...], reply: Any) -> Any:
        """What the caller reads for ``command``, whose server reply is ``reply``."""
        return reply


def _unpack(packed: bytes) -> tuple[tuple[Any, ...], ...]:
    """The commands in a packed write, each argument as text where it is UTF-8."""
    reader = hiredis.Reader()
    reader.feed(packed)
    commands = []
    while (command := reader.gets()) is not False:
        commands.append(tuple(_text(argument) for argument in command))
    return tuple(commands)


def _text(argument: bytes) -> str | bytes:
    try:
        return argument.decode()
    except UnicodeDecodeError:
        return argument


def client_class(connection_class: type[redis.Connection]) -> type[redis.Redis]:
    """A client class (a ``redis_factory``) whose connections are ``connection_class``."""

    class Client(redis.Redis):
        @classmethod
        def from_url(cls, url: str, **kwargs: Any) -> Any:
            return super().from_url(url, connection_class=connection_class, **kwargs)

    return Client
