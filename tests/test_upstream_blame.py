"""What is the upstream's fault and what is ours: only the upstream's failures are retried and
counted by the breaker; local misconfiguration is exit 3 and sends nothing; an upstream's
Retry-After never locks every process out for longer than the documented cap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aigw.common.state import MAX_SHARED_PAUSE, BreakerRule
from aigw.errors import AigwError, ExitCode
from aigw.gateway.circuit import HALF_OPEN, OPEN, CircuitBreaker
from aigw.gateway.http import Headers, LocalProtocolError, MockTransport, Request, Response
from aigw.gateway.policies.retry import RetryPolicy, retry_after_seconds
from aigw.gateway.transports.breaker import BreakerTransport
from aigw.gateway.transports.retry import RetryTransport
from aigw.sandbox import Sandbox
from aigw.settings import Settings
from aigw.storage.state import SQLiteState
from tests.helpers.cli import Cli, point_at
from tests.helpers.clock import FakeClock

URL = "https://gateway.test/v1/assistants"
HOST = "gateway.test"


@pytest.fixture
def store(isolated_env: Path) -> SQLiteState:
    return SQLiteState(isolated_env / "state.sqlite3")


def breaker_over(store: SQLiteState, handler, clock: FakeClock) -> BreakerTransport:
    breaker = CircuitBreaker(store, BreakerRule(2, 30, 60), clock)
    return BreakerTransport(MockTransport(handler), breaker)


# -- the breaker --------------------------------------------------------------------------


def test_a_local_error_below_the_breaker_is_not_counted_against_the_upstream(
    store: SQLiteState,
) -> None:
    def handler(request: Request) -> Response:
        raise LocalProtocolError("Illegal header value")

    transport = breaker_over(store, handler, FakeClock())
    for _ in range(5):
        with pytest.raises(LocalProtocolError):
            transport.handle_request(Request("GET", URL))

    assert store.breaker_get(HOST) is None


def test_429_answers_count_toward_the_breaker(store: SQLiteState) -> None:
    transport = breaker_over(store, lambda request: Response(429), FakeClock())
    for _ in range(2):
        transport.handle_request(Request("GET", URL))

    row = store.breaker_get(HOST)
    assert row is not None and row.state == OPEN


def test_any_exception_below_the_breaker_ends_a_half_open_probe_as_a_failure(
    store: SQLiteState,
) -> None:
    clock = FakeClock()
    answers: list[object] = [Response(503), Response(503), RuntimeError("surprise")]

    def handler(request: Request) -> Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    transport = breaker_over(store, handler, clock)
    for _ in range(2):
        transport.handle_request(Request("GET", URL))
    clock.advance(31)

    with pytest.raises(RuntimeError):
        transport.handle_request(Request("GET", URL))  # the half-open probe

    row = store.breaker_get(HOST)
    assert row is not None and row.state == OPEN and row.state != HALF_OPEN


def test_a_local_error_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: Request) -> Response:
        calls.append(1)
        raise LocalProtocolError("Illegal header value")

    transport = RetryTransport(MockTransport(handler), RetryPolicy(3), clock=FakeClock())
    with pytest.raises(LocalProtocolError):
        transport.handle_request(Request("GET", URL))
    assert len(calls) == 1


def test_a_calls_deadline_bounds_its_retries_even_when_attempts_wait_for_slots() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def handler(request: Request) -> Response:
        calls.append(clock.now())
        clock.advance(40)  # e.g. a wait for a rate-limit slot inside the attempt
        return Response(503)

    policy = RetryPolicy(3, 30, attempt_timeout=10, jitter=lambda: 0.0)
    response = RetryTransport(MockTransport(handler), policy, clock=clock).handle_request(
        Request("GET", URL)
    )

    # deadline = budget 30 + 4 attempts × 10 = 70 s: the third attempt would start past it
    assert response.status_code == 503
    assert len(calls) == 2


# -- local misconfiguration: exit 3, nothing sent, the value never shown ------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_API_KEY", "vkey-abcdefgh12345678\n"),
        ("GATEWAY_API_KEY", "vkey-abc\x7fdefgh12345678"),
        ("OPENAI_API_KEY", "sk-abcdefgh12345678\r\nx-evil: 1"),
        ("OPENAI_API_KEY", "sk-abcdéfgh12345678"),
        ("GATEWAY_API_KEYS", "vkey-good-000000000,vkey-bad\x1b[31m0000"),
    ],
)
def test_a_key_a_header_cannot_carry_is_a_configuration_error_and_nothing_is_sent(
    cli: Cli,
    fresh_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    isolated_env: Path,
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AIGW_DEBUG", "1")  # not even the debugging output shows the key

    with pytest.raises(AigwError) as raised:
        cli("assistants", "list")
    monkeypatch.delenv("AIGW_DEBUG")
    result = cli("assistants", "list")

    assert raised.value.code == ExitCode.CONFIG and variable in raised.value.message
    assert result.exit_code == 3
    assert variable in result.stderr
    assert "abcdefgh" not in result.stderr + raised.value.message
    assert fresh_sandbox.faults.requests_seen == 0
    assert SQLiteState(Settings().state_db_path).breaker_all() == []


def test_an_empty_gateway_key_header_name_is_a_configuration_error(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AIGW_GATEWAY_KEY_HEADER", "")

    result = cli("assistants", "list")

    assert result.exit_code == 3
    assert "AIGW_GATEWAY_KEY_HEADER" in result.stderr
    assert fresh_sandbox.faults.requests_seen == 0


# -- Retry-After --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "1e20", "nan", "86400", "Fri, 01 Jan 9999 00:00:00 GMT"])
def test_an_absurd_retry_after_is_clamped(value: str) -> None:
    seconds = retry_after_seconds(Headers({"retry-after": value}), now=1_700_000_000.0)
    assert seconds is None or 0 <= seconds <= 86_400


@pytest.mark.parametrize("value", ["86400", "inf", "1e20"])
def test_a_retry_after_of_a_day_fails_the_call_and_locks_others_out_for_the_cap_at_most(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AIGW_RATE_LIMIT", "60/min")
    monkeypatch.setenv("AIGW_CACHE_TTL", "0")
    fresh_sandbox.faults.add(f"GET /v1/assistants 429 retry-after={value} x1")

    told = cli("assistants", "list")
    other = cli("--no-wait", "assistants", "list")

    assert told.exit_code == 7, told.stderr
    assert "beyond the retry budget" in told.stderr
    assert other.exit_code == 7
    waited = float(other.stderr.split("next slot in ")[1].split(" s")[0])
    assert 0 < waited <= MAX_SHARED_PAUSE + 1

    reset = cli("breaker", "reset")
    after = cli("--no-wait", "assistants", "list")

    assert reset.exit_code == 0 and "rate-limit pause lifted" in reset.stdout + reset.stderr
    assert after.exit_code == 0, after.stderr


def test_a_pause_stored_as_infinity_by_an_older_aigw_is_clamped(
    store: SQLiteState,
) -> None:
    from aigw.gateway.transports.ratelimit import RateLimiter

    clock = FakeClock()
    with store.immediate() as db:
        db.execute("INSERT INTO rate_limit_buckets VALUES ('upstream', ?)", (float("inf"),))
    limiter = RateLimiter(store, "60/min", clock=clock)

    delay = limiter.acquire(wait=True)

    assert 0 < delay <= MAX_SHARED_PAUSE + 1
