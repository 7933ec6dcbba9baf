"""`aigw assistants` end to end: the real CLI, the real OpenAI SDK, the sandbox over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import Cli, point_at


def create(cli: Cli, *args: str) -> dict:
    result = cli("assistants", "create", "--model", "gpt-4o", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_create_then_get_returns_the_same_assistant(cli: Cli, gateway_env) -> None:
    made = create(cli, "--name", "Helper", "--metadata", "team=ops", "--tool", "code_interpreter")
    assert made["id"].startswith("asst_")
    assert made["metadata"] == {"team": "ops"}
    assert made["tools"] == [{"type": "code_interpreter"}]

    got = cli("assistants", "get", made["id"], "--json")
    assert got.exit_code == 0
    assert json.loads(got.stdout)["name"] == "Helper"
    assert got.stderr == ""


def test_list_follows_pages_with_all(cli: Cli, fresh_sandbox, monkeypatch) -> None:
    point_at(monkeypatch, fresh_sandbox)
    ids = [create(cli, "--name", f"a{i}")["id"] for i in range(5)]

    first_page = json.loads(cli("assistants", "list", "--limit", "2", "--json").stdout)
    assert [a["id"] for a in first_page] == ids[::-1][:2]

    everything = json.loads(cli("assistants", "list", "--limit", "2", "--all", "--json").stdout)
    assert [a["id"] for a in everything] == ids[::-1]

    oldest_first = cli("assistants", "list", "--order", "asc", "--after", ids[0], "--json")
    assert [a["id"] for a in json.loads(oldest_first.stdout)] == ids[1:]


def test_list_renders_a_table_for_people(cli: Cli, gateway_env) -> None:
    made = create(cli, "--name", "Tabled")
    result = cli("assistants", "list", "--limit", "100")
    assert result.exit_code == 0
    assert made["id"] in result.stdout and "Tabled" in result.stdout


def test_update_sends_only_what_was_given(cli: Cli, gateway_env, tmp_path: Path) -> None:
    made = create(cli, "--name", "Before", "--description", "kept")
    instructions = tmp_path / "instructions.md"
    instructions.write_text("Answer briefly.")
    result = cli(
        "assistants",
        "update",
        made["id"],
        "--name",
        "After",
        "--instructions-file",
        str(instructions),
        "--temperature",
        "0.5",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    updated = json.loads(result.stdout)
    assert (updated["name"], updated["description"]) == ("After", "kept")
    assert updated["instructions"] == "Answer briefly."
    assert updated["temperature"] == 0.5


def test_function_tool_is_read_from_a_json_file(cli: Cli, gateway_env, tmp_path: Path) -> None:
    spec = tmp_path / "weather.json"
    spec.write_text(json.dumps({"name": "get_weather", "parameters": {"type": "object"}}))
    made = create(cli, "--tool", f"function:{spec}")
    assert made["tools"][0]["function"]["name"] == "get_weather"


def test_delete_asks_unless_yes_and_then_the_assistant_is_gone(cli: Cli, gateway_env) -> None:
    made = create(cli)
    refused = cli("assistants", "delete", made["id"])
    assert refused.exit_code == 2 and "--yes" in refused.stderr

    deleted = cli("assistants", "delete", made["id"], "--yes", "--json")
    assert json.loads(deleted.stdout) == {
        "id": made["id"],
        "object": "assistant.deleted",
        "deleted": True,
    }

    missing = cli("assistants", "get", made["id"])
    assert missing.exit_code == 1
    assert "No assistant found" in missing.stderr and "Traceback" not in missing.stderr
