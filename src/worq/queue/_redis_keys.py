"""Every Redis key worq uses, built in one place.

All keys of one named queue share the hash tag ``{<queue name>}``, so they
hash to one Redis Cluster slot and every script can touch them atomically.
The layout is documented at the top of ``redis_scripts/_lib.lua``, whose
``key.*`` builders mirror this class name for name: a script that needs a key
Python did not pass it (a dependant's task hash, the lease counter) builds it
there, so each kind is spelt once per language.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["RedisKeys"]


@attrs.frozen
class RedisKeys:
    """Key names for queue ``name``.

    Attributes:
        prefix: ``worq:{<name>}:``, prepended to every key of the queue.
    """

    prefix: str

    @classmethod
    def for_queue(cls, name: str) -> RedisKeys:
        """Keys of the named queue; braces in the name would break the hash tag."""
        if "{" in name or "}" in name:
            raise ValueError(f"queue name {name!r} must not contain '{{' or '}}'")
        return cls(f"worq:{{{name}}}:")

    @property
    def queue(self) -> str:
        """LIST of runnable task ids."""
        return self.prefix + "queue"

    @property
    def claimed(self) -> str:
        """LIST of ids moved out of the queue by a blocked worker, about to be taken."""
        return self.prefix + "claimed"

    @property
    def claimed_since(self) -> str:
        """HASH of claimed ids to when a reclaim sweep first saw them there."""
        return self.prefix + "claimed_since"

    @property
    def delayed(self) -> str:
        """ZSET of delayed task ids scored by when they become runnable."""
        return self.prefix + "delayed"

    @property
    def wakes(self) -> str:
        """Counter of wake-up calls for delayed tasks sitting in the queue list."""
        return self.prefix + "wakes"

    @property
    def processing(self) -> str:
        """ZSET of taken task ids scored by their lease deadline."""
        return self.prefix + "processing"

    @property
    def deferred(self) -> str:
        """SET of pending task ids, waiting for the results they take as arguments."""
        return self.prefix + "deferred"

    @property
    def dropping(self) -> str:
        """LIST of task ids a purge (discard_pending) has still to drop."""
        return self.prefix + "dropping"

    @property
    def leases(self) -> str:
        """Counter: the last lease token handed out, unique across every task of the queue."""
        return self.prefix + "leases"

    @property
    def schedules(self) -> str:
        """HASH of schedule names to their definitions (JSON), registered by the pools."""
        return self.prefix + "schedules"

    @property
    def schedule_state(self) -> str:
        """HASH of schedule names to ``"<last> <next> <task id>"``: the latest time fired
        or passed over, the one after it (ms since the epoch), the latest fire's task."""
        return self.prefix + "schedule_state"

    @property
    def schedulers_alive(self) -> str:
        """STRING: until when (ms since the epoch) a pool's scheduler was last said to run."""
        return self.prefix + "schedulers_alive"

    @property
    def pools(self) -> str:
        """HASH of live pools' ids to their records (JSON), written by each pool's heartbeat."""
        return self.prefix + "pools"

    @property
    def pools_alive(self) -> str:
        """ZSET of pool ids scored by when their record lapses (ms since the epoch)."""
        return self.prefix + "pools_alive"

    @property
    def failed(self) -> str:
        """ZSET of failed task ids scored by when their registry entry lapses (ms since
        the epoch): the failed-task registry's order."""
        return self.prefix + "failed"

    @property
    def failed_tasks(self) -> str:
        """HASH of failed task ids to their registry entries: a JSON line (status, error,
        attempt, failed, keep, track, dependants), a newline, the task's message."""
        return self.prefix + "failed_tasks"

    def stats(self, minute: int) -> str:
        """HASH of one minute's counts (minute since the epoch), added by the pools'
        heartbeats: runs by outcome, and per run-time bucket (``d<i>``); with a TTL."""
        return f"{self.prefix}stats:{minute}"

    def task(self, task_id: str) -> str:
        """HASH of one task: status, message, arguments."""
        return f"{self.prefix}task:{task_id}"

    def result(self, task_id: str) -> str:
        """LIST holding a finished task's result message."""
        return f"{self.prefix}result:{task_id}"

    def deps(self, task_id: str) -> str:
        """SET of pending tasks that take this task's result as an argument."""
        return f"{self.prefix}deps:{task_id}"

    def shared(self, task_id: str) -> str:
        """HASH holding this task's result once for all the pending tasks that take it.

        ``v`` is the result, ``refs`` how many dependants still hold it; the
        last one to finish or be dropped deletes the hash.
        """
        return f"{self.prefix}shared:{task_id}"

    def request(self, token: str) -> str:
        """STRING, with a TTL, recording what the call with this request token did.

        Written by the scripts that store or hand out something (enqueue, defer,
        get, reclaim), so that a retry of a call whose reply was lost gets the
        same answer instead of doing the step twice.
        """
        return f"{self.prefix}req:{token}"

    def taken(self, token: str) -> str:
        """LIST, with a TTL, holding the result the call with this request token took.

        A taken result is moved here rather than deleted, so that a retry of a
        ``pop_result`` call whose reply was lost still gets it, and nobody else.
        """
        return f"{self.prefix}taken:{token}"

    def notify(self, token: str) -> str:
        """Pub/sub channel (not a key) of one async client: set_result publishes there
        the id of each task whose waiter named it (the task hash's ``notify`` field)."""
        return f"{self.prefix}notify:{token}"

    @property
    def pattern(self) -> str:
        """SCAN pattern matching every key of the queue."""
        return re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
