"""The dashboard's web app (Starlette): pages rendered on the server, JSON polled live.

Safe by default: :func:`app` takes optional HTTP basic credentials (the CLI
insists on them for anything but loopback); every action is a POST of JSON
carrying the page's CSRF token in a header and coming from the page's own
origin; Jinja2 escapes every value it renders and the page's script only sets
text, never HTML; the Content-Security-Policy allows no inline script at all.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from worq._urls import mask_url
from worq.dashboard._data import Dashboard, shown
from worq.typing import RetryResult

__all__ = ["CSRF_HEADER", "app"]

CSRF_HEADER = "X-Worq-Csrf"
"""The header every action must carry, holding the token the page was given."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_Next = Callable[[Request], Awaitable[Response]]


def app(url: str, queues: list[str] | None = None, *, auth: str | None = None) -> Starlette:
    """The dashboard of the backend at ``url``, as an ASGI app to serve or mount.

    Args:
        url: The backend's URL, as workers use it.
        queues: The queues to show; None: every queue the backend holds.
        auth: ``"user:password"``: ask for them (HTTP basic); None: ask nothing
            (serve it on loopback only, or behind your own authentication).
    """
    dashboard = Dashboard(url, queues)
    pages = _Pages(dashboard, secrets.token_urlsafe(32))
    folder = resources.files("worq.dashboard")
    static = StaticFiles(directory=str(folder.joinpath("static")))
    routes = [
        Route("/", pages.overview),
        Route("/api/overview", pages.api_overview),
        Route("/tasks", pages.search),
        Route("/tasks/{task_id:path}", pages.task),
        Route("/failed", pages.failed),
        Route("/api/failed/{action}", pages.act_on_failed, methods=["POST"]),
        Mount("/static", static, name="static"),
    ]
    middleware = [Middleware(BaseHTTPMiddleware, dispatch=_secure(auth))]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            dashboard.close()

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _secure(auth: str | None) -> Callable[[Request, _Next], Awaitable[Response]]:
    """The middleware: basic authentication when asked for, security headers always."""
    expected = None if auth is None else base64.b64encode(auth.encode()).decode()

    async def dispatch(request: Request, call_next: _Next) -> Response:
        if expected is not None and not _authorized(request, expected):
            return Response(
                "authentication required", status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="worq dashboard"'},
            )  # fmt: skip
        response = await call_next(request)
        response.headers.update(_SECURITY_HEADERS)
        return response

    return dispatch


def _authorized(request: Request, expected: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "basic" and secrets.compare_digest(given.encode(), expected.encode())


class _Pages:
    """The routes' handlers, over one :class:`Dashboard` and the app's CSRF token."""

    def __init__(self, dashboard: Dashboard, csrf: str) -> None:
        self._dashboard = dashboard
        self._csrf = csrf
        folder = resources.files("worq.dashboard")
        self._templates = Jinja2Templates(directory=str(folder.joinpath("templates")))
        self._templates.env.autoescape = True
        self._templates.env.filters.update(shown=shown, when=_when, payload=_payload)

    def _render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        root = str(request.scope.get("root_path", ""))
        context.update(csrf=self._csrf, url=mask_url(self._dashboard.url), root=root)
        return self._templates.TemplateResponse(request, name, context, status_code=status)

    async def overview(self, request: Request) -> Response:
        data = await run_in_threadpool(self._dashboard.overview)
        return self._render(request, "overview.html", overview=data)

    async def api_overview(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self._dashboard.overview))

    async def search(self, request: Request) -> Response:
        """The search box: a task id (and the queue chosen, if any)."""
        task_id = request.query_params.get("id", "").strip()
        if not task_id:
            return RedirectResponse(request.url_for("overview").path, status_code=303)
        queue = request.query_params.get("queue") or ""
        where = f"?{urlencode({'queue': queue})}" if queue else ""
        return RedirectResponse(request.url_for("task", task_id=task_id).path + where, 303)

    async def task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        queue = request.query_params.get("queue") or None
        if queue is not None and queue not in await run_in_threadpool(self._dashboard.queues):
            return self._render(request, "missing.html", 404, task_id="", queue=queue)
        info = await run_in_threadpool(self._dashboard.find, task_id, queue)
        if info is None:
            return self._render(request, "missing.html", 404, task_id=task_id, queue=queue)
        waits_on, waited_by = await run_in_threadpool(self._dashboard.graph, info)
        return self._render(request, "task.html", info=info, waits_on=waits_on, waited_by=waited_by)

    async def failed(self, request: Request) -> Response:
        queues = await run_in_threadpool(self._dashboard.queues)
        params = request.query_params
        queue = params.get("queue") or queues[0]
        if queue not in queues:
            return self._render(request, "missing.html", 404, task_id="", queue=queue)
        task, error = params.get("task", ""), params.get("error", "")
        listed = await run_in_threadpool(self._dashboard.failed, queue, task, error)
        return self._render(
            request, "failed.html", queues=queues, queue=queue, task=task, error=error,
            failed=listed,
        )  # fmt: skip

    async def act_on_failed(self, request: Request) -> Response:
        """Retry or discard failed tasks: the ids given, or every one matching a filter."""
        refused = self._refuse_forged(request)
        if refused is not None:
            return refused
        action = request.path_params["action"]
        if action not in ("retry", "discard"):
            return JSONResponse({"error": f"no action {action!r}: retry or discard"}, 404)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("queue"), str):
            return JSONResponse({"error": "give the queue, and ids or match"}, 400)
        queue = body["queue"]
        if queue not in await run_in_threadpool(self._dashboard.queues):
            return JSONResponse({"error": f"queue {queue!r} is not shown here"}, 404)
        ids = body.get("ids")
        match = body.get("match")
        if isinstance(match, dict):
            found = await run_in_threadpool(
                self._dashboard.failed, queue, str(match.get("task", "")),
                str(match.get("error", "")),
            )  # fmt: skip
            ids = [failed.id for failed in found]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return JSONResponse({"error": "ids must be a list of task ids"}, 400)
        broker = self._dashboard.broker(queue)
        if action == "retry":
            done = await run_in_threadpool(broker.retry_failed, ids)
            retried = sum(result is RetryResult.RETRIED for result in done.values())
            outcomes = {task_id: str(result) for task_id, result in done.items()}
            return JSONResponse({"done": outcomes, "retried": retried})
        dropped = await run_in_threadpool(broker.discard_failed, ids)
        return JSONResponse({"discarded": dropped})

    def _refuse_forged(self, request: Request) -> Response | None:
        """A POST that did not come from one of this dashboard's pages: refused."""
        token = request.headers.get(CSRF_HEADER, "")
        if not secrets.compare_digest(token.encode(), self._csrf.encode()):
            return JSONResponse({"error": "missing or wrong CSRF token: reload the page"}, 403)
        if not request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"error": "actions take JSON"}, 415)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            return JSONResponse({"error": f"cross-site request from {origin} refused"}, 403)
        return None


def _when(seconds: float | None) -> str:
    """A time as UTC, to the millisecond; a dash when unknown."""
    if seconds is None:
        return "—"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


def _payload(message: bytes) -> bytes:
    """A stored message's arguments: what follows its envelope's line."""
    return message.partition(b"\n")[2]
