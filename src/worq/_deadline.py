"""Waiting with a timeout: one deadline type for every loop that waits.

worq's waits take WorQ 1.1's timeout convention: ``None`` waits forever, ``0``
does not wait, any other number waits that many seconds. A wait that loops
(condition variables wake early, Redis blocking calls are cut into slices,
reclaimed tasks restart the wait) needs the time left at each turn; this is
where that arithmetic lives, on the monotonic clock.
"""

from __future__ import annotations

import time

__all__ = ["Deadline"]


class Deadline:
    """The moment a wait of ``timeout`` seconds, started now, ends.

    Args:
        timeout: Seconds to wait; None for a wait without end.
    """

    __slots__ = ("at",)

    def __init__(self, timeout: float | None) -> None:
        self.at = None if timeout is None else time.monotonic() + timeout
        """When the wait ends, on ``time.monotonic``'s clock; None: never."""

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left (never negative), or None for a wait without end.

        Args:
            now: The current ``time.monotonic()``, when the caller just read it.
        """
        if self.at is None:
            return None
        return max(0.0, self.at - (time.monotonic() if now is None else now))

    def passed(self, now: float | None = None) -> bool:
        """Whether the wait is over (never, for a wait without end)."""
        if self.at is None:
            return False
        return (time.monotonic() if now is None else now) >= self.at

    def capped(self, longest: float, now: float | None = None) -> float:
        """Seconds to wait in the next slice: what is left, at most ``longest``."""
        left = self.remaining(now)
        return longest if left is None else min(longest, left)
