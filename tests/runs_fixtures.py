"""Helpers for the threads/messages/runs tests: make objects through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli

WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def ok_json(cli: Cli, *args: str, input: str | None = None) -> Any:
    """Run `aigw ARGS --json`, insist on success, return the parsed stdout."""
    result = cli(*args, "--json", input=input)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def make_assistant(cli: Cli, tmp_path: Path, *, weather: bool = False) -> str:
    args = ["assistants", "create", "--model", "gpt-4o"]
    if weather:
        spec = tmp_path / "weather.json"
        spec.write_text(json.dumps(WEATHER))
        args += ["--tool", f"function:{spec}"]
    return str(ok_json(cli, *args)["id"])


def make_thread(cli: Cli, *messages: str) -> str:
    args = ["threads", "create"]
    for text in messages:
        args += ["--message", text]
    return str(ok_json(cli, *args)["id"])
