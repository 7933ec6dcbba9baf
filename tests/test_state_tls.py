"""AIGW_STATE_URL=rediss://… : the shared state over TLS, against a redis-server of the test
session's own that listens over TLS only (a throw-away CA, made by openssl). The state is
built from the URL as every aigw process builds it (`open_state`); a server certificate the
client does not trust is a degraded state and a one-line error, never a hang."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigw.common.state import CacheEntry, Gcra
from aigw.errors import ExitCode
from aigw.settings import load_settings
from aigw.storage import open_state
from aigw.storage.failover import FailoverState
from tests.helpers.processes import aigw_process
from tests.helpers.redis import PASSWORD, RedisServer, make_certificates

ENTRY = CacheEntry("k1", "h: assistants", "/v1/assistants", 1.0, 200, [("a", "b")], b"[1]")
ONE_PER_HOUR = Gcra(interval=3600.0, tolerance=0.0)


def tls_state(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[FailoverState, list[str]]:
    """The shared state as aigw opens it from AIGW_STATE_URL, and the warnings it gave."""
    monkeypatch.setenv("AIGW_STATE_URL", url)
    monkeypatch.setenv("AIGW_STATE_TIMEOUT", "2s")  # a TLS handshake on a loaded machine
    warnings: list[str] = []
    state = open_state(load_settings(), warn=warnings.append)
    assert isinstance(state, FailoverState)
    return state, warnings


def test_the_shared_state_works_over_tls(
    tls_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tls_redis_server.flush()
    state, warnings = tls_state(tls_redis_server.url, monkeypatch)
    try:
        first = state.rate_take("key-a", ONE_PER_HOUR, 1000.0, reserve=False)
        second = state.rate_take("key-a", ONE_PER_HOUR, 1000.0, reserve=False)
        state.cache_put(ENTRY, keep_for=3600)
        cached = state.cache_get("k1")
        mode = state.mode
    finally:
        state.close()
    assert (first, second) == (0.0, pytest.approx(3600.0))
    assert cached == ENTRY
    assert mode == "shared" and warnings == []
    # Another process sees the same slot taken and the same entry: the state is in Redis.
    monkeypatch.setenv("AIGW_HOME", str(tmp_path / "another-machine"))
    other, _ = tls_state(tls_redis_server.url, monkeypatch)
    try:
        seen = (
            other.cache_get("k1"),
            other.rate_take("key-a", ONE_PER_HOUR, 1000.0, reserve=False),
        )
    finally:
        other.close()
    assert seen == (ENTRY, pytest.approx(3600.0))


def test_config_show_masks_the_password_and_the_tls_options(
    tls_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGW_STATE_URL", tls_redis_server.url)
    shown = aigw_process("config", "show", "--json")
    rows = {row["variable"]: row["value"] for row in json.loads(shown.stdout)["settings"]}
    assert shown.exit_code == 0, shown.stderr
    assert rows["AIGW_STATE_URL"] == (
        f"rediss://****@127.0.0.1:{tls_redis_server.port}/0?ssl_ca_certs=****"
    )
    assert PASSWORD not in shown.stdout + shown.stderr


def test_a_server_certificate_the_client_does_not_trust_is_degraded_not_a_hang(
    tls_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stranger = make_certificates(tmp_path / "another-ca")
    url = tls_redis_server.tls_url(stranger.ca)
    state, warnings = tls_state(url, monkeypatch)
    try:
        delay = state.rate_take("key-a", ONE_PER_HOUR, 1000.0, reserve=False)
        state.cache_put(ENTRY, keep_for=3600)
        cached = state.cache_get("k1")
        mode, reason = state.mode, state.health.last_error
    finally:
        state.close()
    assert delay == 0.0 and cached is None  # the local rate limit (fail-open); no cache
    assert mode == "degraded" and "certificate verify failed" in reason
    assert len(warnings) == 1 and "rediss://****@127.0.0.1" in warnings[0]
    assert "certificate verify failed" in warnings[0]
    assert PASSWORD not in warnings[0]
    # An operator's command needs the shared state: a one-line error naming the cause.
    status = aigw_process("breaker", "status")
    assert status.exit_code == ExitCode.DATABASE
    assert status.stderr.startswith("error: the shared state at rediss://****@127.0.0.1")
    assert "certificate verify failed" in status.stderr
    assert "Traceback" not in status.stderr and PASSWORD not in status.stderr
