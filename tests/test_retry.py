"""Retry with backoff, against the sandbox's injected faults, asserting the log rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.utils import formatdate

import pytest

from aigw.gateway.client import Gateway
from aigw.gateway.http import Headers
from aigw.gateway.policies.retry import RetryPolicy, retry_after_seconds
from aigw.sandbox import Sandbox
from aigw.settings import load_settings
from aigw.storage import open_state
from tests.helpers.cli import Cli, point_at
from tests.helpers.clock import FakeClock
from tests.helpers.rows import log_rows


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gateway(fresh_sandbox: Sandbox, monkeypatch, clock: FakeClock) -> Iterator[Gateway]:
    """The real SDK over HTTP to this test's sandbox; waits go to a clock that records them."""
    point_at(monkeypatch, fresh_sandbox)
    settings = load_settings()
    made = Gateway(settings, state=open_state(settings), clock=clock)
    yield made
    made.close()


def attempts(gateway: Gateway) -> list[tuple[int | None, int | None]]:
    return [(r.attempt, r.status_code) for r in gateway.records]


def test_429_with_retry_after_1_twice_then_200_makes_three_attempts_and_honours_the_waits(
    gateway: Gateway, fresh_sandbox: Sandbox, clock: FakeClock
) -> None:
    fresh_sandbox.faults.add("GET /v1/assistants 429 retry-after=1 x2")

    gateway.client.beta.assistants.list()

    assert clock.waits == [1.0, 1.0]
    assert attempts(gateway) == [(1, 429), (2, 429), (3, 200)]
    assert len({r.call_id for r in gateway.records}) == 1
    assert fresh_sandbox.faults.requests_seen == 3


def test_500_three_times_then_200_succeeds_with_three_retries(
    gateway: Gateway, fresh_sandbox: Sandbox, clock: FakeClock
) -> None:
    fresh_sandbox.faults.add("GET /v1/assistants 500 x3")

    page = gateway.client.beta.assistants.list()

    assert page.data == []
    assert attempts(gateway) == [(1, 500), (2, 500), (3, 500), (4, 200)]
    # Exponential backoff 1, 2, 4 s with jitter (each wait between half and all of its step).
    for wait, step in zip(clock.waits, (1, 2, 4), strict=True):
        assert step / 2 <= wait <= step


def test_500_more_times_than_retries_fails_after_four_attempts(
    gateway: Gateway, fresh_sandbox: Sandbox
) -> None:
    import openai

    fresh_sandbox.faults.add("GET /v1/assistants 500")
    with pytest.raises(openai.InternalServerError):
        gateway.client.beta.assistants.list()
    assert [a for a, _ in attempts(gateway)] == [1, 2, 3, 4]


def test_a_400_is_tried_once(gateway: Gateway, fresh_sandbox: Sandbox, clock: FakeClock) -> None:
    import openai

    fresh_sandbox.faults.add("GET /v1/assistants 400")
    with pytest.raises(openai.BadRequestError):
        gateway.client.beta.assistants.list()
    assert attempts(gateway) == [(1, 400)]
    assert clock.waits == []


def test_a_dropped_connection_is_retried(
    gateway: Gateway, fresh_sandbox: Sandbox, clock: FakeClock
) -> None:
    fresh_sandbox.faults.add("GET /v1/assistants drop x1")

    gateway.client.beta.assistants.list()

    assert attempts(gateway) == [(1, None), (2, 200)]
    assert gateway.records[0].error_message
    assert len(clock.waits) == 1


def test_a_create_retried_after_a_500_makes_exactly_one_assistant(
    gateway: Gateway, fresh_sandbox: Sandbox
) -> None:
    # The first attempt creates the assistant, then its answer is replaced by a 500: the retry
    # carries the same Idempotency-Key and the sandbox answers it with the first result.
    fresh_sandbox.faults.add("POST /v1/assistants 500 x1 after")

    made = gateway.client.beta.assistants.create(model="gpt-4o", name="once")

    assert list(fresh_sandbox.state.assistants.items) == [made.id]
    assert attempts(gateway) == [(1, 500), (2, 200)]


def test_a_retry_after_beyond_the_budget_fails_at_once_with_exit_7(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    fresh_sandbox.faults.add("GET /v1/assistants 429 retry-after=120")

    result = cli("assistants", "list")

    assert result.exit_code == 7
    assert "asks to retry after 120 s" in result.stderr and "try again after" in result.stderr
    assert fresh_sandbox.faults.requests_seen == 1


def test_the_cli_retries_short_retry_after_ms_waits_and_logs_every_attempt(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch, isolated_env
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    fresh_sandbox.faults.add("GET /v1/assistants 503 retry-after-ms=5 x2")

    result = cli("assistants", "list", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []
    rows = log_rows(isolated_env)
    assert [(r.attempt, r.status_code, r.endpoint) for r in rows] == [
        (1, 503, "/v1/assistants"),
        (2, 503, "/v1/assistants"),
        (3, 200, "/v1/assistants"),
    ]
    assert len({r.call_id for r in rows}) == 1
    assert [r.cache_status for r in rows] == ["miss", "miss", "miss"]


def test_no_retries_when_max_retries_is_zero(cli: Cli, fresh_sandbox: Sandbox, monkeypatch) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AIGW_MAX_RETRIES", "0")
    fresh_sandbox.faults.add("GET /v1/assistants 503 x1")

    assert cli("assistants", "list").exit_code == 1
    assert fresh_sandbox.faults.requests_seen == 1


def test_retry_after_reads_milliseconds_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds(Headers({"retry-after-ms": "250"}), now) == 0.25
    assert retry_after_seconds(Headers({"retry-after": "3"}), now) == 3.0
    date = formatdate(now + 7, usegmt=True)
    assert retry_after_seconds(Headers({"retry-after": date}), now) == pytest.approx(7, abs=1)
    assert retry_after_seconds(Headers({"retry-after": "soon"}), now) is None
    assert retry_after_seconds(Headers({}), now) is None


def test_backoff_doubles_from_one_second_and_stops_at_ten() -> None:
    no_jitter = RetryPolicy(jitter=lambda: 1.0)
    assert [no_jitter.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    most_jitter = RetryPolicy(jitter=lambda: 0.0)
    assert most_jitter.backoff(3) == 2


def test_the_shared_retry_core_decides_accept_retry_give_up_and_beyond_budget() -> None:
    from aigw.gateway.policies.retry import ACCEPT, BEYOND_BUDGET, GIVE_UP, RETRY

    now = 1_700_000_000.0
    policy = RetryPolicy(2, 10.0, jitter=lambda: 1.0)
    call = policy.start(now)
    assert call.after_answer(200, Headers({}), now).action == ACCEPT
    assert call.after_answer(503, Headers({}), now) == (RETRY, 1.0)
    assert call.after_answer(429, Headers({"retry-after": "3"}), now) == (RETRY, 3.0)
    assert call.after_answer(503, Headers({}), now).action == GIVE_UP  # two retries made
    assert (call.made, call.waited) == (2, 4.0)
    assert policy.start(now).after_answer(429, Headers({"retry-after": "60"}), now) == (
        BEYOND_BUDGET,
        60.0,
    )
    assert policy.start(now, retries=0).after_error(now).action == GIVE_UP  # a client's retry
    assert policy.start(now).after_error(now, retryable=False).action == GIVE_UP
    timed = RetryPolicy(3, 30.0, jitter=lambda: 1.0, attempt_timeout=1.0).start(now)
    assert timed.after_error(now + 33.5).action == GIVE_UP  # past the call's deadline
