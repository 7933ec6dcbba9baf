"""Helpers for the gateway server's tests: the real aiohttp app on a loopback port (in this
process, on a thread of its own), clients configured like the design document's, the rows it
wrote, and `aigw gateway serve` as a real process for the signal and worker tests.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import openai
from aiohttp import web

from aigw.common.log_record import LogRecord
from aigw.server.app import create_app
from aigw.server.run import bind, runner_for, url_of
from aigw.server.runtime import RUNTIME, Runtime, ServerOptions
from aigw.settings import Settings
from aigw.storage.base import LogFilter
from aigw.storage.sqlite import SQLiteRepository

GATEWAY_KEY = "gk-app-0000000000000001"
OPENAI_KEY = "sk-app-000000000000000000000abcd"
KEY_HEADER = "x-vercel-ai-gateway-key"


class RunningGateway:
    """`create_app` served on a free loopback port by its own event loop thread."""

    def __init__(self, settings: Settings, upstream: str, options: ServerOptions | None = None):
        self.settings = settings
        options = options or ServerOptions(upstream=upstream.rstrip("/"))
        self.app = create_app(settings, options)
        self.sock = bind("127.0.0.1", 0)
        self.url = url_of(self.sock)
        self.loop = asyncio.new_event_loop()
        self.runner = runner_for(self.app, settings, shutdown_timeout=5)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> RunningGateway:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]

    def client(
        self, gateway_key: str = GATEWAY_KEY, headers: dict[str, str] | None = None, **options: Any
    ) -> openai.OpenAI:
        """The design document's client: base URL, the OpenAI key, the gateway key header."""
        return openai.OpenAI(
            api_key=OPENAI_KEY,
            base_url=self.url,
            default_headers={KEY_HEADER: gateway_key, **(headers or {})},
            **options,
        )

    def rows_when(self, enough: Callable[[list[LogRecord]], bool]) -> list[LogRecord]:
        """The rows once `enough` holds for them (a stream's row is written when the upstream's
        stream ends, which may be after the client has read its last event); 10 s at most."""
        deadline = time.monotonic() + 10
        while True:
            rows = self.rows()
            if enough(rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.02)

    def rows(self) -> list[LogRecord]:
        """Every row written so far, oldest first (the writer's window committed first)."""
        self.runtime.writer.flush()
        store = SQLiteRepository(self.settings.state_db_path)
        try:
            return sorted(store.records(LogFilter()), key=lambda r: (r.created_at, r.attempt or 0))
        finally:
            store.close()


@contextmanager
def gateway(
    upstream: str, options: ServerOptions | None = None, **settings: Any
) -> Iterator[RunningGateway]:
    """A gateway in front of `upstream` accepting GATEWAY_KEY; `settings` override the rest."""
    values: dict[str, Any] = {"gateway_api_key": GATEWAY_KEY} | settings
    running = RunningGateway(Settings(**values), upstream, options).start()
    try:
        yield running
    finally:
        running.stop()


def http(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request (no SDK): status, headers (lower-case names), body — error
    statuses included."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, _lower(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


def authorised(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {OPENAI_KEY}", KEY_HEADER: GATEWAY_KEY, **extra}


@dataclass
class ServeProcess:
    """`python -m aigw gateway serve` in its own process; `url` from its first stdout line."""

    process: subprocess.Popen[str]
    url: str

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        self.process.terminate()
        _, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, err


def serve_process(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
    environment = dict(os.environ) | {"GATEWAY_API_KEY": GATEWAY_KEY} | (env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "aigw", "gateway", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on http://"):
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"gateway did not start: {line!r} {err}")
    return ServeProcess(process, line.removeprefix("listening on "))


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class TinyUpstream:
    """An upstream whose every answer a test writes (`answer(request) -> web.Response`), and
    which records what reached it: for header rules, redirects and hostile answers."""

    def __init__(self, answer: Callable[[web.Request], Any]):
        self.seen: list[Seen] = []
        self._answer = answer

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.seen.append(Seen(request.method, request.path_qs, headers, body))
            result = self._answer(request)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self.sock = bind("127.0.0.1", 0)
        self.url = url_of(self.sock)
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextmanager
def tiny_upstream(answer: Callable[[web.Request], Any]) -> Iterator[TinyUpstream]:
    server = TinyUpstream(answer)
    try:
        yield server
    finally:
        server.stop()


def json_answer(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(body, status=status, headers=headers)
