"""Help that teaches: every command's --help ends with one to three examples that parse, and a
group's help gives each of its commands one whole line.

A new command passes by adding `epilog=examples(...)` (aigw/commands/_options.py) to its
`@app.command(...)` (or its `typer.Typer(...)` when the group itself runs).
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from aigw.cli import app

ROOT = typer.main.get_command(app)
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", "2>", "<", "&"}


def commands_under(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command a user can run: leaf commands, and groups that run themselves."""
    found = []
    subcommands = getattr(command, "commands", None) or {}
    if path and (not subcommands or getattr(command, "invoke_without_command", False)):
        found.append(path)
    for name, sub in subcommands.items():
        if not getattr(sub, "hidden", False):
            found += commands_under(sub, (*path, name))
    return found


def groups_under(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None) or {}
    if not subcommands:
        return []
    nested = [p for name, sub in subcommands.items() for p in groups_under(sub, (*path, name))]
    return [path, *nested]


COMMANDS = commands_under(ROOT)


def help_text(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.stdout


def examples_in(text: str) -> list[str]:
    _, found, after = text.partition("Examples:\n")
    assert found, "no Examples: section"
    lines = [line.strip() for line in after.strip("\n").splitlines()]
    assert all(line.startswith("$ ") for line in lines), lines
    return [line[2:] for line in lines]


def parse(argv: list[str]) -> Any:
    """Parse an aigw command line as the CLI would, down to its command, without running it."""
    command: Any = ROOT
    name: str | None = "aigw"
    parent = None
    while True:
        ctx = command.make_context(name, list(argv), parent=parent)
        rest = [*ctx._protected_args, *ctx.args] if hasattr(command, "commands") else []
        if not rest:
            return ctx
        name, command, argv = command.resolve_command(ctx, rest)
        parent = ctx


def aigw_argv(example: str) -> list[str]:
    """The arguments of the example's `aigw` command, up to the first shell operator."""
    words = shlex.split(example.replace('"$(', " ").replace(')"', " "))
    start = words.index("aigw") + 1
    argv = []
    for word in words[start:]:
        if word in SHELL_OPERATORS:
            break
        argv.append(word)
    return argv


def test_every_command_is_checked() -> None:
    assert ("assistants", "list") in COMMANDS and ("metrics",) in COMMANDS
    assert ("migrate",) in COMMANDS and ("migrate", "status") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_ends_with_examples_of_the_command_that_parse(path: tuple[str, ...]) -> None:
    examples = examples_in(help_text(*path))
    assert 1 <= len(examples) <= 3
    for example in examples:
        assert f"aigw {' '.join(path)}" in " ".join(shlex.split(example)), example
        parse(aigw_argv(example))  # raises on an unknown option or a bad value


GROUPS = groups_under(ROOT)


@pytest.mark.parametrize("path", GROUPS, ids=[" ".join(p) or "aigw" for p in GROUPS])
def test_group_help_gives_each_command_one_whole_line(path: tuple[str, ...]) -> None:
    _, _, listing = help_text(*path).partition("\nCommands:\n")
    lines = [line for line in listing.splitlines() if line.strip()]
    assert lines
    cut = [line for line in lines if line.rstrip().endswith("...")]
    assert not cut, f"descriptions cut at 80 columns: {cut}"
