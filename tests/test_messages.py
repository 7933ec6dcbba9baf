"""`aigw messages` end to end: the real CLI, the real OpenAI SDK, the sandbox over HTTP."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import Cli, make_assistant, make_thread, ok_json, point_at


def text_of(message: dict) -> str:
    return str(message["content"][0]["text"]["value"])


def test_create_with_content_role_and_metadata(cli: Cli, gateway_env) -> None:
    thread_id = make_thread(cli)
    made = ok_json(
        cli,
        "messages",
        "create",
        thread_id,
        "--content",
        "I answer",
        "--role",
        "assistant",
        "-m",
        "source=cli",
    )
    assert made["id"].startswith("msg_") and made["role"] == "assistant"
    assert text_of(made) == "I answer" and made["metadata"] == {"source": "cli"}


def test_content_is_read_from_stdin_with_a_dash(cli: Cli, gateway_env) -> None:
    thread_id = make_thread(cli)
    made = ok_json(cli, "messages", "create", thread_id, "-", input="from a pipe\nline two\n")
    assert text_of(made) == "from a pipe\nline two"


def test_content_is_read_from_a_file(cli: Cli, gateway_env, tmp_path: Path) -> None:
    thread_id = make_thread(cli)
    note = tmp_path / "note.txt"
    note.write_text("written in a file", encoding="utf-8")
    made = ok_json(cli, "messages", "create", thread_id, "--content-file", str(note))
    assert text_of(made) == "written in a file"


def test_exactly_one_content_source_is_required(cli: Cli, fresh_sandbox, monkeypatch) -> None:
    point_at(monkeypatch, fresh_sandbox)
    thread_id = "thread_abc"
    none_given = cli("messages", "create", thread_id)
    both_given = cli("messages", "create", thread_id, "--content", "a", "-", input="b")
    empty = cli("messages", "create", thread_id, "--content", "")
    bad_role = cli("messages", "create", thread_id, "--content", "a", "--role", "system")
    missing_file = cli("messages", "create", thread_id, "--content-file", "nope.txt")
    for result in (none_given, both_given, empty, bad_role, missing_file):
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert "cannot read nope.txt" in missing_file.stderr
    assert fresh_sandbox.state.request_count == 0


def test_list_follows_pages_with_all(cli: Cli, gateway_env) -> None:
    thread_id = make_thread(cli, *(f"m{i}" for i in range(5)))
    first_page = ok_json(cli, "messages", "list", thread_id, "--limit", "2")
    assert [text_of(m) for m in first_page] == ["m4", "m3"]
    everything = ok_json(cli, "messages", "list", thread_id, "--limit", "2", "--all")
    assert [text_of(m) for m in everything] == ["m4", "m3", "m2", "m1", "m0"]
    after = ok_json(
        cli,
        "messages",
        "list",
        thread_id,
        "--order",
        "asc",
        "--after",
        everything[-1]["id"],
        "--before",
        everything[1]["id"],
    )
    assert [text_of(m) for m in after] == ["m1", "m2"]


def test_list_by_run_shows_only_that_runs_reply(cli: Cli, gateway_env, tmp_path: Path) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "ping")
    outcome = ok_json(cli, "runs", "create", thread_id, "--assistant", assistant, "--wait")
    run_id = outcome["run"]["id"]
    only_run = ok_json(cli, "messages", "list", thread_id, "--run", run_id)
    assert [(m["role"], text_of(m)) for m in only_run] == [("assistant", "You said: ping")]


def test_table_mode_shows_the_text_readably(cli: Cli, gateway_env) -> None:
    thread_id = make_thread(cli, "Hello, table")
    listed = cli("messages", "list", thread_id)
    assert listed.exit_code == 0 and "Hello, table" in listed.stdout
    assert '"value"' not in listed.stdout  # not a raw JSON blob

    message_id = ok_json(cli, "messages", "list", thread_id)[0]["id"]
    shown = cli("messages", "get", thread_id, message_id)
    assert shown.exit_code == 0 and "Hello, table" in shown.stdout and message_id in shown.stdout
    assert '"value"' not in shown.stdout


def test_get_returns_one_message_and_bad_ids_exit_2(cli: Cli, gateway_env) -> None:
    thread_id = make_thread(cli, "one")
    message_id = ok_json(cli, "messages", "list", thread_id)[0]["id"]
    assert ok_json(cli, "messages", "get", thread_id, message_id)["id"] == message_id

    wrong = cli("messages", "get", thread_id, "run_123")
    assert wrong.exit_code == 2 and "invalid message_id" in wrong.stderr
    unknown = cli("messages", "get", thread_id, "msg_doesnotexist")
    assert unknown.exit_code == 1 and "No message found" in unknown.stderr
    bad_run = cli("messages", "list", thread_id, "--run", "msg_1")
    assert bad_run.exit_code == 2 and "invalid run_id" in bad_run.stderr


def test_text_that_looks_like_markup_is_shown_literally(cli: Cli, gateway_env) -> None:
    text = "[/x] keep [bold]these[/bold] :smile: as typed"
    thread_id = make_thread(cli, text)
    listed = cli("messages", "list", thread_id)
    assert listed.exit_code == 0, listed.stderr
    assert text in listed.stdout
