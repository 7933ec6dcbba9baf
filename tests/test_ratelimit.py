"""Client-side rate limit: one bucket in the local store, shared by every aigw process."""

from __future__ import annotations

import pytest

from aigw.errors import AigwError, ExitCode
from aigw.gateway.policies.ratelimit import parse_rate
from aigw.gateway.transports.ratelimit import RateLimiter
from aigw.sandbox import Sandbox
from aigw.storage.state import SQLiteState
from tests.helpers.cli import point_at
from tests.helpers.clock import FakeClock
from tests.helpers.processes import aigw_process


def test_the_rate_limit_is_shared_by_two_processes(fresh_sandbox: Sandbox, monkeypatch) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AIGW_RATE_LIMIT", "2/hour")
    monkeypatch.setenv("AIGW_CACHE_TTL", "0")  # every list goes upstream

    assert aigw_process("assistants", "list").exit_code == 0  # one process takes a slot…
    assert aigw_process("assistants", "list").exit_code == 0  # …another takes the last one

    third = aigw_process("--no-wait", "assistants", "list")

    assert third.exit_code == ExitCode.RATE_LIMITED
    assert "over the rate limit AIGW_RATE_LIMIT=2/hour; next slot in" in third.stderr
    assert fresh_sandbox.faults.requests_seen == 2


@pytest.fixture
def store(isolated_env) -> SQLiteState:
    return SQLiteState(isolated_env / "state.sqlite3")


def test_over_the_limit_a_caller_waits_for_the_next_slot(store: SQLiteState) -> None:
    clock = FakeClock()
    limiter = RateLimiter(store, "2/s", clock=clock)
    assert [limiter.acquire(wait=True) for _ in range(2)] == [0.0, 0.0]  # a full bucket
    assert limiter.acquire(wait=True) == pytest.approx(0.5)
    assert limiter.acquire(wait=True) == pytest.approx(1.0)  # slots are reserved in turn
    clock.advance(10)
    assert limiter.acquire(wait=True) == 0.0


def test_with_no_wait_over_the_limit_fails_at_once_and_takes_no_slot(store: SQLiteState) -> None:
    clock = FakeClock()
    limiter = RateLimiter(store, "1/min", clock=clock)
    limiter.acquire(wait=False)
    with pytest.raises(AigwError) as refused:
        limiter.acquire(wait=False)
    assert refused.value.code == ExitCode.RATE_LIMITED
    clock.advance(60)
    assert limiter.acquire(wait=False) == 0.0


def test_a_429_pushes_every_caller_back_by_its_retry_after(store: SQLiteState) -> None:
    clock = FakeClock()
    limiter = RateLimiter(store, "100/s", clock=clock)
    other_process = RateLimiter(store, "100/s", clock=clock)
    limiter.pause(3.0)
    assert other_process.acquire(wait=True) == pytest.approx(3.0)


def test_a_429_from_upstream_slows_the_limiter(fresh_sandbox: Sandbox, monkeypatch) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AIGW_RATE_LIMIT", "100/s")
    monkeypatch.setenv("AIGW_MAX_RETRIES", "0")
    fresh_sandbox.faults.add("GET /v1/assistants 429 retry-after=60 x1")
    # a wait beyond the retry budget fails the call that was told (exit 7)…
    assert aigw_process("assistants", "list").exit_code == ExitCode.RATE_LIMITED

    refused = aigw_process("--no-wait", "assistants", "list")

    assert refused.exit_code == ExitCode.RATE_LIMITED
    assert fresh_sandbox.faults.requests_seen == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("60/min", (60, 60.0)),
        ("10/s", (10, 1.0)),
        ("1000/hour", (1000, 3600.0)),
        ("5/10s", (5, 10.0)),
        ("2/minutes", (2, 60.0)),
    ],
)
def test_rates_read_as_count_per_period(spec: str, expected: tuple[int, float]) -> None:
    assert parse_rate(spec) == expected


def test_a_bad_rate_is_a_configuration_error(fresh_sandbox: Sandbox, monkeypatch) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AIGW_RATE_LIMIT", "lots")
    result = aigw_process("assistants", "list")
    assert result.exit_code == ExitCode.CONFIG and "AIGW_RATE_LIMIT" in result.stderr
