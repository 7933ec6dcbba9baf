"""Messages that point at the real mistake, and say what to type instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigw.sandbox import Sandbox
from tests.helpers.cli import Cli, make_assistant, make_thread, ok_json, point_at
from tests.helpers.processes import aigw_process


@pytest.mark.parametrize("flag", ["--force", "--no-wait", "--direct", "--verbose"])
def test_a_global_option_after_the_command_is_accepted(gateway_env: Sandbox, flag: str) -> None:
    done = aigw_process("assistants", "list", flag, env={"OPENAI_BASE_URL": gateway_env.url})
    assert done.exit_code == 0, done.stderr


def test_a_global_option_with_a_value_after_the_command_is_accepted(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("AI_GATEWAY_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    done = aigw_process("assistants", "list", "--gateway-url", fresh_sandbox.url)
    assert done.exit_code == 0, done.stderr


def test_swapped_ids_say_which_argument_wants_which_prefix(
    cli: Cli, gateway_env: Sandbox, tmp_path: Path
) -> None:
    assistant, thread = make_assistant(cli, tmp_path), make_thread(cli, "hi")
    swapped = cli("runs", "create", assistant, "--assistant", thread)
    assert swapped.exit_code == 2
    assert "invalid thread_id: it wants an ID starting with 'thread_'" in swapped.stderr
    assert f"'{assistant}' is an assistant ID" in swapped.stderr
    assert "swapped" in swapped.stderr and "AIGW_CHECK_ID_PREFIXES" not in swapped.stderr


def test_a_gateway_url_without_v1_is_pointed_out(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    without_v1 = fresh_sandbox.url.removesuffix("/v1")
    monkeypatch.setenv("AI_GATEWAY_URL", without_v1)
    result = cli("assistants", "list", "--no-cache")
    assert result.exit_code == 1
    assert f"does AI_GATEWAY_URL end in /v1? it is {without_v1}" in result.stderr
    assert "check the ID" not in result.stderr


def test_a_second_run_on_a_busy_thread_hints_at_cancelling_the_active_one(
    cli: Cli, gateway_env: Sandbox, tmp_path: Path
) -> None:
    assistant, thread = make_assistant(cli, tmp_path), make_thread(cli, "hi")
    args = ["runs", "create", thread, "--assistant", assistant]
    first = ok_json(cli, *args, "--metadata", "sandbox_run_ms=600000")
    second = cli(*args)
    assert second.exit_code == 1
    cancel = f"aigw runs cancel {thread} {first['id']}"
    assert f"hint: wait for it to finish, or cancel it: {cancel}" in second.stderr


def test_breaker_reset_closes_whatever_circuit_is_open_and_says_which(
    fresh_sandbox: Sandbox, gateway_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_sandbox.faults.add("* /v1/* 503")
    monkeypatch.setenv("AIGW_MAX_RETRIES", "0")
    monkeypatch.setenv("AIGW_BREAKER_FAILURES", "2")
    for _ in range(2):  # another upstream than the configured one fails twice: its circuit opens
        aigw_process("--gateway-url", fresh_sandbox.url, "assistants", "list", "--no-cache")
    host = fresh_sandbox.url.removeprefix("http://").removesuffix("/v1")
    reset = aigw_process("breaker", "reset")
    assert reset.exit_code == 0
    assert f"circuit closed for {host} (was open after 2 failures" in reset.stderr
    status = json.loads(aigw_process("breaker", "status", "--json").stdout)
    assert all(s["state"] == "closed" for s in status)
    again = aigw_process("breaker", "reset")
    assert "no circuit was open; nothing to close" in again.stderr


def test_prune_with_nothing_to_prune_says_so_without_asking(cli: Cli) -> None:
    result = cli("logs", "prune", "--older-than", "30d")  # no terminal, no --yes: would refuse
    assert result.exit_code == 0
    assert result.stderr.startswith("nothing to prune: no log rows older than ")
