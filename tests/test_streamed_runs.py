"""Streamed runs (`runs create --wait`): retried only when nothing can have been created, with
one Idempotency-Key the sandbox honours for streams too."""

from __future__ import annotations

import json

import pytest

from aigw.sandbox import Sandbox
from tests.helpers.cli import Cli, make_assistant, make_thread, ok_json, point_at
from tests.helpers.rows import log_rows


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


def test_n_waited_runs_cost_what_the_same_runs_read_with_runs_get_cost(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch, tmp_path
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AIGW_HOME", str(tmp_path / "waited"))
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "how much does this cost?")
    runs = [
        ok_json(cli, "runs", "create", thread_id, "--assistant", assistant, "--wait")["run"]
        for _ in range(3)
    ]
    waited = ok_json(cli, "metrics")
    (row,) = [r for r in log_rows(tmp_path / "waited") if r.run_id == runs[0]["id"]]
    assert (row.endpoint, row.model) == ("/v1/threads/{thread_id}/runs", "gpt-4o")
    assert row.prompt_tokens == runs[0]["usage"]["prompt_tokens"] > 0

    monkeypatch.setenv("AIGW_HOME", str(tmp_path / "read"))  # a log of the reads alone
    for run in runs:
        assert ok_json(cli, "runs", "get", thread_id, run["id"])["usage"] == run["usage"]
    read = ok_json(cli, "metrics")

    def tokens(report: dict) -> tuple[int, int]:
        rows = report["cost_by_model"]
        return sum(r["tokens_in"] for r in rows), sum(r["tokens_out"] for r in rows)

    expected_in = sum(r["usage"]["prompt_tokens"] for r in runs)
    expected_out = sum(r["usage"]["completion_tokens"] for r in runs)
    assert tokens(waited) == tokens(read) == (expected_in, expected_out)
    assert waited["cost_total_usd"] == read["cost_total_usd"] > 0
