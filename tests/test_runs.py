"""`aigw runs` end to end: the real CLI, the real OpenAI SDK, the sandbox over HTTP.

Tests taking `api_env` run twice: against the sandbox's Assistants API and against the
bridge (aigw/bridge/) serving it over the sandbox's chat completions; the CLI must not tell.

The sandbox's EchoResponder answers "You said: <last user message>", asks for a function
when the message names one, and fails a run whose message holds `[sandbox:fail]`; the run
metadata `sandbox_run_ms` makes one run as slow as a test needs.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from aigw.errors import ExitCode
from tests.helpers.cli import Cli, make_assistant, make_thread, ok_json, point_at
from tests.helpers.processes import signal_a_waiting_run

SLOW = ("-m", "sandbox_run_ms=60000")  # a run that will not finish during the test


def test_create_without_wait_returns_the_queued_run_and_get_list_steps_show_it(
    cli: Cli, api_env, tmp_path: Path
) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "hello")
    run = ok_json(
        cli,
        "runs",
        "create",
        thread_id,
        "--assistant",
        assistant,
        "--instructions",
        "Be brief.",
        "--additional-instructions",
        "Say hi.",
        "--model",
        "gpt-4o-mini",
        "-m",
        "job=1",
    )
    assert run["status"] == "queued" and run["model"] == "gpt-4o-mini"
    assert run["instructions"] == "Be brief.\n\nSay hi." and run["metadata"] == {"job": "1"}

    got = ok_json(cli, "runs", "get", thread_id, run["id"])
    assert got["id"] == run["id"]
    listed = ok_json(cli, "runs", "list", thread_id)
    assert [r["id"] for r in listed] == [run["id"]]

    table = cli("runs", "get", thread_id, run["id"])
    assert table.exit_code == 0 and run["id"] in table.stdout and "gpt-4o-mini" in table.stdout


def test_wait_prints_the_reply_and_the_token_usage(cli: Cli, api_env, tmp_path) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "What is the gateway?")
    result = cli("runs", "create", thread_id, "--assistant", assistant, "--wait")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "You said: What is the gateway?"
    assert "completed" in result.stderr and "tokens" in result.stderr


def test_wait_in_json_mode_prints_only_the_run_and_its_messages(
    cli: Cli, api_env, tmp_path
) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "json please")
    result = cli("runs", "create", thread_id, "--assistant", assistant, "--wait", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    outcome = json.loads(result.stdout)
    assert outcome["run"]["status"] == "completed"
    assert outcome["run"]["usage"]["total_tokens"] > 0
    assert [m["content"][0]["text"]["value"] for m in outcome["messages"]] == [
        "You said: json please"
    ]


def test_the_tool_call_round_trip_create_requires_action_submit_completed(
    cli: Cli, api_env, tmp_path
) -> None:
    assistant = make_assistant(cli, tmp_path, weather=True)
    thread_id = make_thread(cli, "Use get_weather city=Lisbon please")

    asked = cli("runs", "create", thread_id, "--assistant", assistant, "--wait")
    assert asked.exit_code == 0, asked.stderr
    assert "get_weather" in asked.stdout and '{"city": "Lisbon"}' in asked.stdout
    run = ok_json(cli, "runs", "list", thread_id)[0]
    assert run["status"] == "requires_action"
    (call,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert call["id"] in asked.stdout
    command = f"aigw runs submit-tool-outputs {thread_id} {run['id']} --output {call['id']}=VALUE"
    assert command in asked.stderr

    answered = cli(
        "runs",
        "submit-tool-outputs",
        thread_id,
        run["id"],
        "--output",
        f"{call['id']}=18C sunny",
        "--wait",
    )
    assert answered.exit_code == 0, answered.stderr
    assert answered.stdout.strip() == "get_weather returned 18C sunny"

    steps = ok_json(cli, "runs", "steps", thread_id, run["id"], "--order", "asc")
    assert [s["type"] for s in steps] == ["tool_calls", "message_creation"]
    table = cli("runs", "steps", thread_id, run["id"])
    assert "get_weather" in table.stdout


def test_outputs_file_answers_the_calls_in_either_shape(cli: Cli, api_env, tmp_path) -> None:
    assistant = make_assistant(cli, tmp_path, weather=True)
    for shape in ("array", "object"):
        thread_id = make_thread(cli, "get_weather city=Oslo")
        asked = ok_json(cli, "runs", "create", thread_id, "--assistant", assistant, "--wait")
        run = asked["run"]
        (call,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        outputs = tmp_path / f"{shape}.json"
        result_value = {"temp": -3}
        if shape == "array":
            outputs.write_text(json.dumps([{"tool_call_id": call["id"], "output": "cold"}]))
        else:
            outputs.write_text(json.dumps({call["id"]: result_value}))
        done = ok_json(
            cli,
            "runs",
            "submit-tool-outputs",
            thread_id,
            run["id"],
            "--outputs-file",
            str(outputs),
            "--wait",
        )
        reply = done["messages"][0]["content"][0]["text"]["value"]
        expected = "cold" if shape == "array" else json.dumps(result_value)
        assert done["run"]["status"] == "completed" and reply == f"get_weather returned {expected}"


def test_bad_json_in_the_outputs_file_is_one_line_and_exit_2(
    cli: Cli, fresh_sandbox, monkeypatch, tmp_path
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    broken = tmp_path / "broken.json"
    broken.write_text('{"call_1": ')
    wrong_shape = tmp_path / "shape.json"
    wrong_shape.write_text(json.dumps([{"id": "call_1"}]))
    args = ("runs", "submit-tool-outputs", "thread_1", "run_1")
    for file, words in ((broken, "is not valid JSON"), (wrong_shape, "must be an array")):
        result = cli(*args, "--outputs-file", str(file))
        assert result.exit_code == 2
        assert words in result.stderr and len(result.stderr.splitlines()) == 1
    neither = cli(*args)
    both = cli(*args, "--output", "call_1=x", "--outputs-file", str(broken))
    bad_call = cli(*args, "--output", "nope=x")
    no_equals = cli(*args, "--output", "call_1")
    for result in (neither, both, bad_call, no_equals):
        assert result.exit_code == 2 and result.stderr.startswith("error:")
    assert fresh_sandbox.state.request_count == 0


def test_bad_ids_are_refused_before_anything_is_sent(cli: Cli, fresh_sandbox, monkeypatch) -> None:
    point_at(monkeypatch, fresh_sandbox)
    cases = [
        ("runs", "create", "thread_1", "--assistant", "gpt-4o"),
        ("runs", "create", "asst_1", "--assistant", "asst_1"),
        ("runs", "get", "thread_1", "msg_1"),
        ("runs", "list", "thread 1"),
        ("runs", "cancel", "thread_1", "run/1"),
        ("runs", "steps", "run_1", "thread_1"),
        ("runs", "submit-tool-outputs", "thread_1", "step_1", "--output", "call_1=x"),
    ]
    for args in cases:
        result = cli(*args)
        assert result.exit_code == 2, args
        assert "invalid" in result.stderr and "Traceback" not in result.stderr
    assert fresh_sandbox.state.request_count == 0


def test_unknown_run_is_a_404_with_exit_1(cli: Cli, api_env) -> None:
    thread_id = make_thread(cli)
    result = cli("runs", "get", thread_id, "run_doesnotexist")
    assert result.exit_code == 1 and "No run found" in result.stderr


def test_a_failed_run_prints_last_error_and_exits_1(cli: Cli, api_env, tmp_path) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "please [sandbox:fail:rate_limit_exceeded]")
    result = cli("runs", "create", thread_id, "--assistant", assistant, "--wait")
    assert result.exit_code == ExitCode.API_ERROR
    assert "failed" in result.stdout and "rate_limit_exceeded" in result.stdout
    assert "error: run run_" in result.stderr and "failed: rate_limit_exceeded" in result.stderr

    as_json = make_thread(cli, "[sandbox:fail]")
    result = cli("runs", "create", as_json, "--assistant", assistant, "--wait", "--json")
    assert result.exit_code == ExitCode.API_ERROR
    assert json.loads(result.stdout)["run"]["last_error"]["code"] == "server_error"


def test_timeout_exits_5_and_says_the_run_continues(cli: Cli, gateway_env, tmp_path) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "slow")
    result = cli(
        "runs",
        "create",
        thread_id,
        "--assistant",
        assistant,
        *SLOW,
        "--wait",
        "--timeout",
        "300ms",
    )
    assert result.exit_code == ExitCode.TIMEOUT
    assert "continues on the server" in result.stderr
    run_id = ok_json(cli, "runs", "list", thread_id)[0]["id"]
    assert f"aigw runs get {thread_id} {run_id}" in result.stderr
    assert ok_json(cli, "runs", "get", thread_id, run_id)["status"] in ("queued", "in_progress")

    bad = cli("runs", "create", thread_id, "--assistant", assistant, "--wait", "--timeout", "soon")
    assert bad.exit_code == 2 and "--timeout expects a duration" in bad.stderr


def test_cancel_with_wait_ends_cancelled(cli: Cli, gateway_env, tmp_path) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "never mind")
    run = ok_json(cli, "runs", "create", thread_id, "--assistant", assistant, *SLOW)
    result = cli("runs", "cancel", thread_id, run["id"], "--wait")
    assert result.exit_code == 0, result.stderr
    assert f"run {run['id']} cancelled" in result.stderr
    assert ok_json(cli, "runs", "get", thread_id, run["id"])["status"] == "cancelled"


def test_cancel_without_wait_answers_cancelling(cli: Cli, gateway_env, tmp_path) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "stop")
    run = ok_json(cli, "runs", "create", thread_id, "--assistant", assistant, *SLOW)
    cancelling = ok_json(cli, "runs", "cancel", thread_id, run["id"])
    assert cancelling["status"] == "cancelling"


def test_ctrl_c_stops_waiting_and_says_how_to_cancel(
    cli: Cli, gateway_env, tmp_path, isolated_env
) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "wait for me")
    stopped = signal_a_waiting_run(
        thread_id, assistant, signal.SIGINT, lambda: bool(ok_json(cli, "runs", "list", thread_id))
    )
    stdout, stderr = stopped.stdout, stopped.stderr
    assert stopped.exit_code == ExitCode.INTERRUPTED, stderr
    assert "stopped waiting" in stderr and f"aigw runs cancel {thread_id}" in stderr
    assert "Traceback" not in stderr and stdout == ""
