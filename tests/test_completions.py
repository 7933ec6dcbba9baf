"""Shell completions: checked in, current with the commands, and working in a real shell."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main

from aigw.cli import app
from aigw.commands.completions import script
from aigw.services.completions import FILENAMES, SHELLS, install_path
from tests.helpers.cli import Cli

COMPLETIONS = Path(__file__).resolve().parent.parent / "completions"


@pytest.mark.parametrize("shell", SHELLS)
def test_checked_in_completions_are_current_with_the_commands(shell: str) -> None:
    checked_in = (COMPLETIONS / FILENAMES[shell]).read_text(encoding="utf-8")
    assert checked_in == script(shell, typer.main.get_command(app)), (
        f"completions/{FILENAMES[shell]} is out of date: run "
        f"`aigw completions show {shell} > completions/{FILENAMES[shell]}`"
    )


def complete_in_bash(line: str) -> list[str]:
    words = line.split(" ")
    program = (
        f"source {COMPLETIONS / 'aigw.bash'}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_aigw\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bash_completes_groups_verbs_and_options() -> None:
    assert "assistants" in complete_in_bash("aigw a")
    assert complete_in_bash("aigw assistants l") == ["list"]
    assert complete_in_bash("aigw assistants list --l") == ["--limit"]
    assert "--json" in complete_in_bash("aigw config show --")


@pytest.mark.parametrize(("shell", "check"), [("zsh", ["zsh", "-n"]), ("fish", ["fish", "-n"])])
def test_zsh_and_fish_scripts_parse(shell: str, check: list[str]) -> None:
    if shutil.which(check[0]) is None:
        pytest.skip(f"{check[0]} is not installed")
    done = subprocess.run([*check, str(COMPLETIONS / FILENAMES[shell])], capture_output=True)
    assert done.returncode == 0, done.stderr


def test_install_writes_where_the_shell_looks(cli: Cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = cli("completions", "install", "fish")
    assert result.exit_code == 0, result.stderr
    target = install_path("fish", tmp_path)
    assert target.read_text(encoding="utf-8") == script("fish", typer.main.get_command(app))


def test_an_unknown_shell_is_a_usage_error(cli: Cli) -> None:
    result = cli("completions", "show", "tcsh")
    assert result.exit_code == 2
    assert "unknown shell 'tcsh'" in result.stderr
