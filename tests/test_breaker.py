"""Circuit breaker: state in the local store, so it holds across separate aigw processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner, Result

from aigw.cli import app
from aigw.common.state import BreakerRule
from aigw.context import AppContext
from aigw.gateway.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from aigw.sandbox import Sandbox
from aigw.storage.state import SQLiteState
from tests.helpers.cli import Cli, point_at
from tests.helpers.clock import FakeClock
from tests.helpers.processes import aigw_process
from tests.helpers.rows import log_rows

HOST = "gateway.test:443"


@pytest.fixture
def outage(fresh_sandbox: Sandbox, monkeypatch) -> Sandbox:
    """Every API call to this test's sandbox fails with 503; aigw does not retry (one try each)."""
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AIGW_MAX_RETRIES", "0")
    fresh_sandbox.faults.add("* /v1/* 503")
    return fresh_sandbox


def host_of_sandbox(server: Sandbox) -> str:
    return server.url.split("//")[1].split("/")[0]


def test_the_breaker_opens_after_five_failures_across_processes_and_the_sixth_makes_no_request(
    outage: Sandbox, isolated_env
) -> None:
    for _ in range(5):
        assert aigw_process("assistants", "list").exit_code == 1
    assert outage.faults.requests_seen == 5

    sixth = aigw_process("assistants", "list")

    assert sixth.exit_code == 6
    host = host_of_sandbox(outage)
    assert f"circuit open for {host} since " in sixth.stderr
    assert "after 5 failures; next probe in " in sixth.stderr and "--force" in sixth.stderr
    assert outage.faults.requests_seen == 5  # nothing reached the sandbox
    rows = log_rows(isolated_env)
    assert [r.status_code for r in rows] == [503] * 5 + [None]
    assert rows[-1].error_message is not None and "circuit open" in rows[-1].error_message


def test_after_the_cool_down_one_probe_closes_the_circuit(
    outage: Sandbox, monkeypatch, isolated_env
) -> None:
    monkeypatch.setenv("AIGW_BREAKER_FAILURES", "2")
    for _ in range(2):
        assert aigw_process("assistants", "list").exit_code == 1
    assert configured_state() == ("open", 2)
    outage.faults.clear()  # the upstream recovers
    # The circuit opened on the other processes' wall clock; this one is that clock moved past
    # the cool-down (AIGW_BREAKER_COOLDOWN, 30s).
    clock = FakeClock(start=time.time())
    refused = in_process(clock, "assistants", "list")
    assert refused.exit_code == 6, refused.stderr
    clock.advance(30)

    probe = in_process(clock, "assistants", "list", "--json")

    assert probe.exit_code == 0, probe.stderr
    assert configured_state() == ("closed", 0)
    assert outage.faults.requests_seen == 3
    assert aigw_process("assistants", "list").exit_code == 0


def in_process(clock: FakeClock, *args: str) -> Result:
    """The CLI in this process, its layers on `clock`."""
    return CliRunner().invoke(app, list(args), obj=AppContext(clock=clock))


def configured_state() -> tuple[str, int]:
    status = aigw_process("breaker", "status", "--json")
    mine = [s for s in json.loads(status.stdout) if s["configured"]]
    return mine[0]["state"], mine[0]["failures"]


def test_a_failed_probe_opens_the_circuit_again_and_only_one_probe_goes_at_a_time(
    isolated_env,
) -> None:
    clock = FakeClock()
    store = SQLiteState(isolated_env / "state.sqlite3")
    breaker = CircuitBreaker(store, BreakerRule(2, 30, 60), clock)
    for _ in range(2):
        assert breaker.refusal(HOST, claim=True) is None
        breaker.record(HOST, failure=True, error="HTTP 503")
    assert store.breaker_get(HOST).state == OPEN  # type: ignore[union-attr]
    refused = breaker.refusal(HOST, claim=True)
    assert refused is not None and "next probe in 30 s" in refused.message

    clock.advance(31)
    assert breaker.refusal(HOST, claim=True) is None  # this call is the probe
    assert store.breaker_get(HOST).state == HALF_OPEN  # type: ignore[union-attr]
    second = breaker.refusal(HOST, claim=True)
    assert second is not None and "probe is in flight" in second.message
    breaker.record(HOST, failure=True, error="ReadTimeout")

    row = store.breaker_get(HOST)
    assert row is not None and row.state == OPEN and row.failures == 3
    assert row.opened_at == clock.now()
    store.close()


def test_client_errors_do_not_count_and_a_success_resets_the_count(isolated_env) -> None:
    store = SQLiteState(isolated_env / "state.sqlite3")
    breaker = CircuitBreaker(store, BreakerRule(3, 30, 60), FakeClock())
    breaker.record(HOST, failure=True)
    breaker.record(HOST, failure=True)
    breaker.record(HOST, failure=False)  # e.g. a 404: the upstream answered
    breaker.record(HOST, failure=True)
    row = store.breaker_get(HOST)
    assert row is not None and row.state == CLOSED and row.failures == 1
    store.close()


def test_four_hundreds_from_the_upstream_never_open_the_circuit(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    fresh_sandbox.faults.add("GET /v1/assistants 404")
    for _ in range(6):
        assert cli("assistants", "list").exit_code == 1
    assert fresh_sandbox.faults.requests_seen == 6


def test_force_calls_anyway_while_the_circuit_is_open(cli: Cli, outage: Sandbox) -> None:
    for _ in range(5):
        cli("assistants", "list")
    assert cli("assistants", "list").exit_code == 6
    outage.faults.clear()

    forced = cli("--force", "assistants", "list", "--json")

    assert forced.exit_code == 0, forced.stderr
    assert outage.faults.requests_seen == 6
    assert cli("assistants", "list").exit_code == 0  # the forced success closed it


def test_breaker_reset_closes_the_circuit(cli: Cli, outage: Sandbox) -> None:
    for _ in range(5):
        cli("assistants", "list")
    status = json.loads(cli("breaker", "status", "--json").stdout)
    assert [s["state"] for s in status if s["configured"]] == ["open"]

    reset = cli("breaker", "reset")

    assert reset.exit_code == 0 and "circuit closed" in reset.stderr
    status = json.loads(cli("breaker", "status", "--json").stdout)
    assert [s["state"] for s in status if s["configured"]] == ["closed"]


def test_a_refused_invocation_never_imports_the_sdk(outage: Sandbox) -> None:
    for _ in range(5):
        aigw_process("assistants", "list")
    script = (
        "import sys\n"
        "from aigw.cli import app\n"
        "try:\n"
        "    app(['assistants', 'list'])\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, 'openai' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["6", "False"], done.stderr
