"""`aigw dashboard`: a web page of the metrics, served by aiohttp from static files (static/:
plain HTML, CSS and JS, with uPlot vendored for the charts), reading the numbers through
services/dashboard.py — the same query layer as `aigw metrics`.

`dashboard_app` makes the aiohttp application serving the page, its static files and two JSON
endpoints. It runs alone (`serve`) or mounted under another application
(`parent.add_subapp("/dashboard", dashboard_app(settings))`): every URL the page uses is
relative to its own.

JSON endpoints:
  GET api/metrics?since=&until=&endpoint=&agent=  → the window (services/dashboard.py)
  GET api/logs/{id}                              → one log row, redacted
Bad parameters get a 400 with an OpenAI-shaped error body; nothing answers with a traceback.
Only numbers and redacted rows leave the server: settings and secrets never do.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from aigw.errors import AigwError, ExitCode, UsageError

if TYPE_CHECKING:
    from aigw.context import AppContext
    from aigw.settings import Settings

T = TypeVar("T")
STATIC = Path(str(files("aigw.dashboard") / "static"))
READER_THREADS = 2  # the window and a row asked for at once; each thread has its own connection
SHUTDOWN_TIMEOUT_S = 5.0
# The page loads nothing from elsewhere and runs no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HTTP_STATUS = {
    ExitCode.USAGE: 400,
    ExitCode.API_ERROR: 404,  # the only one the dashboard raises: no such log row
    ExitCode.CONFIG: 503,
    ExitCode.NETWORK: 503,
    ExitCode.TIMEOUT: 504,
    ExitCode.DATABASE: 503,
}


class Readers:
    """Store reads off the event loop. Each worker thread opens its own AppContext (its own
    SQLite or Postgres connection) on first use; `close` closes them all after the threads."""

    def __init__(self, settings: Settings, *, threads: int = READER_THREADS):
        self.settings = settings
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="aigw-dashboard")
        self.local = threading.local()
        self.contexts: list[AppContext] = []
        self.lock = threading.Lock()

    def _context(self) -> AppContext:
        ctx = getattr(self.local, "ctx", None)
        if ctx is None:
            from aigw.context import AppContext

            ctx = self.local.ctx = AppContext(self.settings)
            ctx.flush_logs_on_close = False  # a reader writes nothing
            with self.lock:
                self.contexts.append(ctx)
        return ctx

    async def run(self, work: Callable[[AppContext], T]) -> T:
        loop = asyncio.get_running_loop()
        # The context is the worker thread's own: it is looked up there, not here.
        return await loop.run_in_executor(self.executor, lambda: work(self._context()))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            contexts, self.contexts = self.contexts, []
        for ctx in contexts:
            ctx.close()


def error_body(message: str, kind: str, status: int) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    from aigw.render.output import to_jsonable

    return orjson.dumps(to_jsonable(value)).decode()


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """AigwError → its HTTP status with a one-line message; anything else → 500, said once on
    stderr; never a traceback in a response."""
    try:
        response = await handler(request)
    except AigwError as exc:
        status = HTTP_STATUS.get(exc.code, 500)
        kind = "invalid_request_error" if status < 500 else "server_error"
        message = f"{exc.message} ({exc.hint})" if exc.hint and status < 500 else exc.message
        response = error_body(message, kind, status)
    except web.HTTPException as exc:
        if "/api/" not in request.path:
            raise
        response = error_body(exc.reason, "invalid_request_error", exc.status)
    except Exception as exc:
        print(f"aigw dashboard: {request.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        response = error_body(f"internal error: {type(exc).__name__}", "server_error", 500)
    response.headers.update(SECURITY_HEADERS)
    return response


def dashboard_app(
    settings: Settings,
    *,
    local: bool = False,
    clock: Callable[[], float] = time.time,
    guard: Middleware | None = None,
) -> web.Application:
    """The dashboard as an aiohttp application, reading the remote store when configured
    (unless `local`), else the local one — as `aigw metrics` does. `guard` runs before every
    route (the gateway's key check when mounted there)."""
    readers = Readers(settings)
    middlewares: list[Middleware] = [errors_as_json] if guard is None else [guard, errors_as_json]
    app = web.Application(middlewares=middlewares)

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    async def page(request: web.Request) -> web.StreamResponse:
        if not request.path.endswith("/"):  # the page's URLs are relative to its folder
            search = f"?{request.query_string}" if request.query_string else ""
            raise web.HTTPFound(f"{request.path}/{search}")
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def metrics(request: web.Request) -> web.Response:
        from aigw.services.dashboard import dashboard_options, dashboard_view

        options = dashboard_options(dict(request.query), local=local)
        moment = now()
        view = await readers.run(lambda ctx: dashboard_view(ctx, options, moment))
        return web.json_response(view, dumps=_dumps, headers={"Cache-Control": "no-store"})

    async def log_row(request: web.Request) -> web.Response:
        from aigw.services.dashboard import log_row as read_row

        record_id = request.match_info["record_id"]
        row = await readers.run(lambda ctx: read_row(ctx, record_id, local=local))
        return web.json_response(row, dumps=_dumps, headers={"Cache-Control": "no-store"})

    async def close_readers(app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, readers.close)

    app.router.add_get("", page)
    app.router.add_get("/", page)
    app.router.add_get("/api/metrics", metrics)
    app.router.add_get("/api/logs/{record_id}", log_row)
    app.router.add_static("/static", STATIC)
    app.on_cleanup.append(close_readers)
    return app


# -- running it alone -------------------------------------------------------------------------


def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    on_ready: Callable[[str], None],
    shutdown_timeout: float = SHUTDOWN_TIMEOUT_S,
) -> None:
    """Serve until SIGINT or SIGTERM, then drain: requests under way get `shutdown_timeout`
    seconds to finish, the readers close, and this returns."""

    async def run() -> None:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise UsageError(
                    f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                    hint="pick another --port, or --port 0 for a free one",
                ) from None
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            bound_host, bound_port = runner.addresses[0][:2]
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            on_ready(f"http://{shown}:{bound_port}/")
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(run())
