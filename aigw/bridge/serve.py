"""The bridge on a background thread with its own event loop (tests, benchmarks, `aigw demo`).

`aigw gateway serve --assistants local` mounts the same routes in the gateway's own app.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from aigw.bridge.http import bridge_app
from aigw.bridge.legs import ModelCall
from aigw.bridge.model import ChatModel
from aigw.bridge.service import BridgeService
from aigw.bridge.store import BridgeStore


def make_store(database: str | Path, *, lease_s: float = 300.0) -> tuple[BridgeStore, bool]:
    """A Postgres store for a postgres:// URL, else a SQLite file; and whether it is ours alone."""
    text = str(database)
    if text.startswith(("postgres://", "postgresql://")):
        from aigw.bridge.postgres_store import PostgresBridgeStore

        return PostgresBridgeStore(text, lease_s=lease_s), False
    from aigw.bridge.sqlite_store import SqliteBridgeStore

    return SqliteBridgeStore(text, lease_s=lease_s), True


class BridgeServer:
    """`start()` serves on 127.0.0.1 (a free port unless given) until `stop()`; `url`: …/v1."""

    def __init__(
        self,
        database: str | Path,
        model_url: str,
        model_key: str,
        *,
        timeout_s: float = 120.0,
        expiry_s: float = 600.0,
        drain_s: float = 10.0,
        on_call: Callable[[ModelCall], None] = lambda call: None,
    ):
        store, exclusive = make_store(database, lease_s=timeout_s + 60.0)
        self.service = BridgeService(
            store,
            ChatModel(model_url, model_key, timeout_s=timeout_s),
            expiry_s=expiry_s,
            exclusive_store=exclusive,
            drain_s=drain_s,
            on_call=on_call,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, port: int = 0) -> BridgeServer:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            runner = web.AppRunner(
                bridge_app(self.service),
                access_log=None,
                shutdown_timeout=self.service.drain_s + 5.0,
            )
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            self._runner = runner
            self.port = runner.addresses[0][1]

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
            except BaseException as error:  # reported to start()'s caller
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, daemon=True, name="bridge")
        self._thread.start()
        if not ready.wait(30):
            raise TimeoutError("the bridge did not start within 30 s")
        if failure:
            raise failure[0]
        return self

    def call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the bridge's loop (tests reach the service this way)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        self.call(self._runner.cleanup(), timeout=30.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None
