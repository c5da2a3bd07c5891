"""worq's dashboard: a live web page of queues, pools, tasks and failures.

Needs the ``worq[dashboard]`` extra (Starlette, uvicorn, Jinja2). Serve it
with ``worq dashboard URL``, or mount :func:`app` in your own ASGI service.
"""

from __future__ import annotations

try:
    from worq.dashboard._app import app
except ImportError as exc:  # pragma: no cover - the extra is installed in tests
    raise ImportError(
        f"the worq dashboard needs its extra: pip install 'worq[dashboard]' ({exc})"
    ) from exc

__all__ = ["app"]
