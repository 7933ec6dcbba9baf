"""AIGW_DEBUG is a setting like every other boolean: read from the environment or .env, in any
of the spellings the settings take."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aigw.cli import app
from aigw.context import AppContext


class BrokenContext(AppContext):
    """A context whose client fails in a way aigw has no words for."""

    @property
    def openai(self):  # type: ignore[override]
        raise RuntimeError("boom")


def run(*args: str):
    return CliRunner().invoke(app, list(args), obj=BrokenContext(), catch_exceptions=False)


@pytest.mark.parametrize("spelling", ["on", "yes", "1", "true"])
def test_aigw_debug_in_dotenv_shows_the_traceback(spelling: str) -> None:
    Path(".env").write_text(f"AIGW_DEBUG={spelling}\n")
    with pytest.raises(RuntimeError, match="boom"):
        run("assistants", "list")


def test_aigw_debug_on_in_the_environment_shows_the_traceback(monkeypatch) -> None:
    monkeypatch.setenv("AIGW_DEBUG", "on")
    with pytest.raises(RuntimeError, match="boom"):
        run("assistants", "list")


def test_without_aigw_debug_the_error_is_one_line() -> None:
    result = run("assistants", "list")
    assert result.exit_code == 1
    assert "unexpected RuntimeError: boom" in result.stderr
