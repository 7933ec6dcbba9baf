"""The CLI in process (stdout and stderr apart), pointed at a sandbox, making objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from aigw.cli import app
from aigw.sandbox import Sandbox


class Cli:
    """Runs `aigw …` in process with stdout and stderr kept apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(app, list(args), input=input, catch_exceptions=False)


def point_at(
    monkeypatch: pytest.MonkeyPatch, server: Sandbox, gateway_key: str = "gk-test"
) -> None:
    """The operator's environment names `server` as the gateway."""
    monkeypatch.setenv("AI_GATEWAY_URL", server.url)
    monkeypatch.setenv("GATEWAY_API_KEY", gateway_key)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000abcd")


_WEATHER_FUNCTION = {
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
        spec.write_text(json.dumps(_WEATHER_FUNCTION))
        args += ["--tool", f"function:{spec}"]
    return str(ok_json(cli, *args)["id"])


def make_thread(cli: Cli, *messages: str) -> str:
    args = ["threads", "create"]
    for text in messages:
        args += ["--message", text]
    return str(ok_json(cli, *args)["id"])
