"""Runtime: what the running gateway shares between requests, built once per worker process.

The upstream and its client session, the accepted gateway keys, the shared state (cache,
breaker, rate limits: the same SQLite file as the CLI, so workers on one machine agree; or
Redis with AIGW_STATE_URL, so machines agree — docs/scaling.md), the
policies over it, the group-commit log writer and the background sync, and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from aigw.common.state import CLOSED, Admission, AsyncSharedState, BreakerRule, Gcra
from aigw.gateway.circuit import CircuitOpenError, breaker_rule, host_of, refusal_error
from aigw.gateway.policies.keys import (
    LabelledKey,
    fingerprint,
    in_rotation_order,
    labelled_keys,
    should_remember,
)
from aigw.gateway.policies.ratelimit import gcra_of
from aigw.redact import Redactor, redactor_for
from aigw.server.metrics import GatewayMetrics
from aigw.storage.group_commit import GroupCommitWriter
from aigw.storage.sqlite import SQLiteRepository
from aigw.storage.state import SQLiteState

if TYPE_CHECKING:
    from aigw.settings import Settings


AGENTS_FRESH_FOR_S = 10.0


@dataclass(frozen=True)
class ServerLimit:
    """One of the server's rate limits: its bucket's name, its spec and its GCRA rule."""

    name: str
    spec: str
    rule: Gcra


@dataclass
class ServerOptions:
    """What `aigw gateway serve` adds to the settings."""

    upstream: str  # base URL ending in /v1 (default OPENAI_BASE_URL)
    worker: int = 0  # which worker this process is (0 when there is one)
    workers: int = 1  # how many there are
    assistants: str = (
        "proxy"  # proxy: pass them upstream; local: answer them (server/assistants.py)
    )
    model_url: str | None = None  # with local: the Chat Completions base URL runs are made through


@dataclass
class Runtime:
    """Built by `create_app`'s start-up (after a worker forks: SQLite connections are per
    process); handlers reach it as `request.app[RUNTIME]`."""

    settings: Settings
    options: ServerOptions
    state: AsyncSharedState  # what requests decide from (Redis with AIGW_STATE_URL)
    local: SQLiteState  # AIGW_HOME's state: the fall-back, and what /readyz checks
    logs: SQLiteRepository
    writer: GroupCommitWriter
    breaker: BreakerRule
    redactor: Redactor
    metrics: GatewayMetrics
    upstream_host: str  # the breaker's key
    upstream_origin: tuple[str, str, int | None]  # scheme, host, port: cache keys and tags
    accepted_keys: list[bytes]
    upstream_keys: list[LabelledKey]
    global_limit: ServerLimit | None = None
    key_limits: dict[str, ServerLimit] = field(default_factory=dict)  # by accepted key
    circuit: str = CLOSED  # the upstream's circuit as last read (for /metrics)
    session: aiohttp.ClientSession | None = None
    in_flight: int = 0
    sync: BackgroundSync | None = None
    _agents: dict[str, str] = field(default_factory=dict)
    _agents_read_at: float = 0.0

    @classmethod
    def build(cls, settings: Settings, options: ServerOptions) -> Runtime:
        from aigw.storage import open_async_state

        local = SQLiteState(settings.state_db_path)
        state = open_async_state(settings, local, warn=_warn)
        logs = SQLiteRepository(settings.state_db_path)
        writer = GroupCommitWriter(logs, window=settings.commit_window, on_error=_warn)
        secret = settings.upstream_gateway_keys
        upstream_keys = labelled_keys(None, None, secret.get_secret_value() if secret else None)
        runtime = cls(
            settings=settings,
            options=options,
            state=state,
            local=local,
            logs=logs,
            writer=writer,
            breaker=breaker_rule(settings),
            redactor=redactor_for(settings),
            metrics=GatewayMetrics(),
            upstream_host=host_of(options.upstream),
            upstream_origin=origin_of(options.upstream),
            accepted_keys=[key.encode() for key in settings.gateway_keys],
            upstream_keys=upstream_keys,
        )
        if settings.rate_limit:
            runtime.global_limit = ServerLimit(
                "gateway:all", settings.rate_limit, gcra_of(settings.rate_limit)
            )
        runtime.metrics.watch(runtime)
        return runtime

    # -- gateway keys ----------------------------------------------------------------------
    def key_accepted(self, given: str | None) -> bool:
        """Whether a client's gateway key is one of the configured ones (constant time)."""
        if not given:
            return False
        raw = given.encode("utf-8", "surrogateescape")
        found = False
        for key in self.accepted_keys:
            found |= hmac.compare_digest(raw, key)
        return found

    def key_limit(self, given: str) -> ServerLimit | None:
        """The per-key rate limiter (AIGW_KEY_RATE_LIMIT) of an accepted key; its bucket is
        named by the key's fingerprint, never by the key (found in memory by the key)."""
        spec = self.settings.key_rate_limit
        if not spec:
            return None
        limiter = self.key_limits.get(given)  # only accepted keys come here: a few at most
        if limiter is None:
            name = f"gateway:key:{fingerprint(given)}"
            limiter = self.key_limits[given] = ServerLimit(name, spec, gcra_of(spec))
        return limiter

    # -- the shared state's decisions ------------------------------------------------------
    @property
    def state_mode(self) -> str:
        """local (SQLite), shared (Redis) or degraded (Redis unreachable: local state)."""
        return str(getattr(self.state, "mode", "local"))

    async def admit(self, limits: list[ServerLimit], cache_key: str | None) -> Admission:
        """A slot of every limit (or none: then which one refused, and for how long), and the
        cache entry under `cache_key` when given: one call to the shared state."""
        buckets = [(limit.name, limit.rule) for limit in limits]
        return await self.state.admit(buckets, time.time(), cache_key)

    async def breaker_refusal(self) -> CircuitOpenError | None:
        """The open circuit's refusal, or None: the call goes (perhaps as the one probe)."""
        now = time.time()
        row = await self.state.breaker_claim(self.upstream_host, now, self.breaker)
        self.circuit = row.state if row is not None else CLOSED
        return refusal_error(row, now, self.breaker) if row is not None else None

    async def breaker_record(self, *, failure: bool, error: str) -> None:
        await self.state.breaker_record(
            self.upstream_host, time.time(), self.breaker, failure=failure, error=error
        )

    async def read_circuit(self) -> str:
        """The upstream's circuit as the shared state has it now."""
        row = await self.state.breaker_get(self.upstream_host)
        self.circuit = row.state if row is not None else CLOSED
        return self.circuit

    async def upstream_keys_in_order(self) -> list[LabelledKey]:
        """The upstream gateway keys, the one remembered to work first."""
        if not self.upstream_keys:
            return []
        remembered = await self.state.remembered_key(self.upstream_host)
        return in_rotation_order(self.upstream_keys, remembered)

    async def remember_upstream_key(self, key: LabelledKey) -> None:
        remembered = await self.state.remembered_key(self.upstream_host)
        if should_remember(self.upstream_keys, key, remembered):
            await self.state.remember_key(
                self.upstream_host, fingerprint(key.value), announced=True
            )

    def agent_for(self, assistant_id: str) -> str | None:
        """The agents.id the mirror recorded for an assistant (re-read every few seconds)."""
        now = time.monotonic()
        if now - self._agents_read_at > AGENTS_FRESH_FOR_S:
            self._agents_read_at = now
            with contextlib.suppress(Exception):
                self._agents = self.logs.agent_ids()
        return self._agents.get(assistant_id)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=True, cookie_jar=_NoCookies()
        )
        self.sync = BackgroundSync(self.settings, self.writer)
        self.sync.start()

    async def close(self) -> None:
        """After the drain: close the client, commit every row, sync within the budget."""
        if self.session is not None:
            await self.session.close()
        try:  # before the local state closes: what it kept back is written first
            await self.state.close()
        except Exception as exc:  # Redis or the store gone at shutdown: say so and go on
            _warn(f"closing the shared state: {type(exc).__name__}: {exc}"[:300])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._finish)

    def _finish(self) -> None:
        left = self.writer.close()
        if left:
            _warn(f"{left} log rows could not be written to {self.settings.state_db_path}")
        if self.sync is not None:
            self.sync.stop(final_budget=self.settings.sync_budget)
        self.local.close()
        self.logs.close()


class _NoCookies(aiohttp.DummyCookieJar):
    """A proxy must not keep one client's cookies for the next."""


class BackgroundSync:
    """Copies committed rows to Supabase/Postgres every AIGW_SYNC_INTERVAL seconds, on its own
    thread and connections: a remote outage never slows a request, the rows just wait."""

    def __init__(self, settings: Settings, writer: GroupCommitWriter):
        self.settings = settings
        self.writer = writer
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from aigw.storage import remote_kind

        if remote_kind(self.settings) is None:
            return
        self._thread = threading.Thread(target=self._run, name="aigw-gateway-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sync_interval):
            self.once(self.settings.sync_interval)

    def once(self, budget: float) -> None:
        from aigw.services.sync import flush_pending

        report = flush_pending(self.settings, budget)
        self.last_error = report.error if report is not None else None

    def stop(self, *, final_budget: float) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(final_budget)
        if final_budget > 0:
            started = time.monotonic()
            self.once(final_budget)
            if self.last_error:
                _warn(
                    f"log sync at shutdown: {self.last_error} "
                    f"(after {time.monotonic() - started:.1f} s); the rows wait in the local store"
                )


def _warn(message: str) -> None:
    with contextlib.suppress(Exception):
        print(f"aigw gateway: {message}", file=sys.stderr, flush=True)


def origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


RUNTIME = web.AppKey("aigw.runtime", Runtime)
