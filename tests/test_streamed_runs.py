"""Streamed runs (`runs create --wait`): retried only when nothing can have been created, with
one Idempotency-Key the sandbox honours for streams too."""

from __future__ import annotations

import json

import pytest

from aigw.sandbox import Sandbox
from tests.helpers.cli import Cli, make_assistant, make_thread, point_at


def runs_of(sandbox: Sandbox, thread_id: str) -> list[dict]:
    return [r for r in sandbox.state.runs.values() if r["thread_id"] == thread_id]


@pytest.fixture
def assistant_and_thread(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch, tmp_path
) -> tuple[str, str]:
    point_at(monkeypatch, fresh_sandbox)
    return make_assistant(cli, tmp_path), make_thread(cli, "hello")


def test_a_waited_create_under_two_502s_after_the_work_makes_exactly_one_run(
    cli: Cli, fresh_sandbox: Sandbox, assistant_and_thread: tuple[str, str]
) -> None:
    assistant, thread_id = assistant_and_thread
    # The upstream makes the run, then the answer is lost twice: a retry must find that run.
    fresh_sandbox.faults.add("POST /v1/threads/*/runs 502 retry-after-ms=1 x2 after")
    result = cli("runs", "create", thread_id, "--assistant", assistant, "--wait", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["run"]["status"] == "completed"
    assert len(runs_of(fresh_sandbox, thread_id)) == 1


def test_a_waited_create_is_not_retried_when_the_connection_dropped_after_sending(
    cli: Cli, fresh_sandbox: Sandbox, assistant_and_thread: tuple[str, str]
) -> None:
    assistant, thread_id = assistant_and_thread
    fresh_sandbox.faults.add("POST /v1/threads/*/runs drop x1")
    seen = fresh_sandbox.faults.requests_seen
    result = cli("runs", "create", thread_id, "--assistant", assistant, "--wait")
    assert result.exit_code == 4, result.stderr
    assert fresh_sandbox.faults.requests_seen == seen + 1  # one attempt, no retry
