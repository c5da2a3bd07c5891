"""Where the tests find their Redis server."""

from __future__ import annotations

import os


def external_url() -> str | None:
    """The server named by WORQ_TEST_REDIS_URL, used instead of a private one."""
    return os.environ.get("WORQ_TEST_REDIS_URL") or None
