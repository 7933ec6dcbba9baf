"""The dashboard served for real on a loopback port (its own event loop in a thread), a store
seeded with the metrics tests' rows, and `aigw metrics --json` for the window the page read."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from aigw.dashboard import dashboard_app
from aigw.settings import load_settings
from tests.helpers.cli import Cli
from tests.helpers.metrics import NOW, generated_rows, load_sqlite

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"
SEEDED_ROWS = 600


@contextmanager
def running(app: web.Application) -> Iterator[str]:
    """`app` served on a free loopback port until the block ends; yields its base URL."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    url: list[str] = []
    failure: list[BaseException] = []

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            url.append(f"http://127.0.0.1:{runner.addresses[0][1]}/")
            started.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def thread_main() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            failure.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=thread_main, name="dashboard-under-test", daemon=True)
    thread.start()
    assert started.wait(30), "the dashboard did not start"
    if failure:
        raise failure[0]
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        assert not thread.is_alive(), "the dashboard did not stop"


@contextmanager
def dashboard_at_now(*, local: bool = False) -> Iterator[str]:
    """The dashboard over the environment's store, its clock at the metrics tests' NOW."""
    app = dashboard_app(load_settings(), local=local, clock=NOW.timestamp)
    with running(app) as url:
        yield url


def seed_local(home: Path, count: int = SEEDED_ROWS) -> None:
    load_sqlite(home / "aigw.sqlite3", generated_rows(count)).close()


def metrics_json(cli: Cli, report: dict[str, Any], *extra: str) -> dict[str, Any]:
    """`aigw metrics --json` for the window (and filters) a dashboard report was made for."""
    args = ["metrics", "--json", "--since", report["since"], "--until", report["until"]]
    for name in ("endpoint", "agent", "model"):
        if report.get(name):
            args += [f"--{name}", report[name]]
    result = cli(*args, *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def get_json(url: str) -> tuple[int, Any]:
    import httpx

    response = httpx.get(url, timeout=30)
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.status_code, response.json()
