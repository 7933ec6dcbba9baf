"""The README keeps its promises: short, the CI runs its test command, every command is shown
in an example that runs (tests/test_docs_examples.py runs them)."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from aigw.cli import app
from tests.helpers.docs_examples import all_examples

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced_commands(text: str) -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(c for c in fenced_commands(README) if c.endswith("pytest"))
    assert test_command in ci.splitlines()


def test_the_first_setup_command_installs_and_runs_the_demo() -> None:
    first = fenced_commands(README)[0]
    assert "pip install" in first and first.endswith("aigw demo")


def test_the_readme_is_short() -> None:
    assert len(README.splitlines()) <= 250


def test_every_command_has_an_example_that_runs() -> None:
    shown = "\n".join(command for example in all_examples() for command in example.commands)
    root = typer.main.get_command(app)
    missing = []
    for group_name, group in root.commands.items():  # type: ignore[attr-defined]
        verbs = getattr(group, "commands", None)
        names = [f"aigw {group_name} {verb}" for verb in verbs] if verbs else [f"aigw {group_name}"]
        missing += [name for name in names if not re.search(re.escape(name) + r"\b", shown)]
    assert not missing, f"no example in README.md or docs/ runs: {', '.join(missing)}"
