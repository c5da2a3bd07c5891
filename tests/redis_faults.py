"""Faults injected where the Redis backend meets the network: its connections.

The backend writes its script calls straight to connections it holds (see
``worq.queue._redis_connections``), past ``Redis.execute_command`` and
``Pipeline``; so a test that breaks replies, refuses commands or garbles
answers does it in a ``redis.Connection`` subclass, which every round trip of
the backend goes through, pooled or held alike.
"""

from __future__ import annotations

from typing import Any

import redis


class Recording(redis.Connection):
    """A connection that knows which command each reply it reads answers."""

    sent: tuple[tuple[Any, ...], ...] = ()
    """The commands sent whose replies are still to be read, in order."""

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        self.sent = (args,)
        super().send_command(*args, **kwargs)  # type: ignore[no-untyped-call]  # untyped in redis-py

    def pack_commands(self, commands: Any) -> Any:
        self.sent = tuple(tuple(command) for command in commands)
        return super().pack_commands(commands)  # type: ignore[no-untyped-call]  # untyped in redis-py

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        command, self.sent = (self.sent[0], self.sent[1:]) if self.sent else ((), ())
        reply = super().read_response(*args, **kwargs)  # an error reply raises, its command read
        return self.answer(command, reply)

    def answer(self, command: tuple[Any, ...], reply: Any) -> Any:
        """What the caller reads for ``command``, whose server reply is ``reply``."""
        return reply


def client_class(connection_class: type[redis.Connection]) -> type[redis.Redis]:
    """A client class (a ``redis_factory``) whose connections are ``connection_class``."""

    class Client(redis.Redis):
        @classmethod
        def from_url(cls, url: str, **kwargs: Any) -> Any:
            return super().from_url(url, connection_class=connection_class, **kwargs)

    return Client
