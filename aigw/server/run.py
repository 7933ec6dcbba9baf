"""Running the gateway: bind once, serve in one process or fork N workers, drain on SIGTERM.

The socket is bound before anything starts (so `--port 0` knows its port) and shared by the
workers, which the kernel hands connections to in turn. Each worker builds its own Runtime
(SQLite connections do not survive a fork) and shares AIGW_HOME with the others: the breaker,
rate limits and cache agree across workers on one machine. On SIGTERM or SIGINT a worker stops
accepting, lets in-flight requests finish for up to AIGW_DRAIN_TIMEOUT seconds, commits its log
rows and syncs them within AIGW_SYNC_BUDGET, then exits 0; the parent forwards the signal and
waits for every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from aigw.server.runtime import ServerOptions
    from aigw.settings import Settings

BACKLOG = 1024
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
REFORWARD_EVERY_S = 1.0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket; raises OSError when the address is taken or not ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=BACKLOG)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def serve(
    settings: Settings,
    options: ServerOptions,
    sock: socket.socket,
    *,
    workers: int,
    announce: Callable[[str], None],
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code (0 after a clean drain)."""
    # From here a stop signal is only noted until the event loop (or, in the parent, the
    # forwarding) takes over: one that arrives while a worker starts must drain it, not kill
    # it half-way.
    requested = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: requested.set())
    if workers <= 1:
        return _worker(settings, options, sock, announce, requested)
    metrics_dir = Path(tempfile.mkdtemp(prefix="aigw-metrics-", dir=_metrics_parent(settings)))
    # Before any worker imports prometheus-client: its counters then live in shared files.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    children: list[int] = []
    try:
        for number in range(workers):
            pid = os.fork()
            if pid == 0:  # the worker: serve, then leave without running the parent's exit code
                code = 1
                try:
                    options.worker = number
                    code = _worker(settings, options, sock, lambda url: None, requested)
                finally:
                    os._exit(code)
            children.append(pid)
        announce(url_of(sock))

        running = list(children)
        stopping = [requested.is_set()]  # a plain flag: the handler may interrupt anything

        def forward(signum: int, frame: object) -> None:
            stopping[0] = True
            for child in running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGTERM)

        for signum in STOP_SIGNALS:
            signal.signal(signum, forward)
        worst = 0
        sent_at = -REFORWARD_EVERY_S
        while running:
            for child in list(running):
                pid, status = os.waitpid(child, os.WNOHANG)
                if pid:
                    running.remove(child)
                    worst = max(worst, os.waitstatus_to_exitcode(status) if status else 0)
            # A worker still starting can miss a stop signal (its loop's handlers not yet in
            # place), so the stop is sent again each second until every worker has exited.
            if running and stopping[0] and time.monotonic() - sent_at >= REFORWARD_EVERY_S:
                forward(signal.SIGTERM, None)
                sent_at = time.monotonic()
            if running:
                time.sleep(0.05)
        return 0 if worst in (0, -signal.SIGTERM) else 1
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def runner_for(
    app: web.Application, settings: Settings, *, shutdown_timeout: float | None = None
) -> web.AppRunner:
    """The app's runner: no access log, the drain timeout, and slow clients cut off."""
    from aiohttp import web

    # aiohttp closes a connection whose next request has not fully arrived when its
    # keep-alive timer fires, and the timer starts when the connection opens (and again
    # after each answer): so this bounds the wait for a request line and headers, which a
    # client sending them a byte at a time (slowloris) would stretch without end. The body
    # has its own bound (AIGW_TIMEOUT, then 408) in the proxy.
    return web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=settings.drain_timeout if shutdown_timeout is None else shutdown_timeout,
        keepalive_timeout=settings.header_timeout,
    )


def _metrics_parent(settings: Settings) -> Path:
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings.home


def _worker(
    settings: Settings,
    options: ServerOptions,
    sock: socket.socket,
    announce: Callable[[str], None],
    requested: threading.Event,
) -> int:
    import uvloop

    return uvloop.run(_serve_until_stopped(settings, options, sock, announce, requested))


async def _serve_until_stopped(
    settings: Settings,
    options: ServerOptions,
    sock: socket.socket,
    announce: Callable[[str], None],
    requested: threading.Event,
) -> int:
    from aiohttp import web

    from aigw.server.app import create_app

    app = create_app(settings, options)
    runner = runner_for(app, settings)
    await runner.setup()
    site = web.SockSite(runner, sock, backlog=BACKLOG)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    if requested.is_set():  # asked to stop while starting
        stop.set()
    announce(url_of(sock))
    await stop.wait()
    # Stops accepting, waits for in-flight requests (up to the drain timeout), then runs the
    # app's cleanup: the client closes, the last rows are committed and synced.
    await runner.cleanup()
    sys.stdout.flush()
    return 0
