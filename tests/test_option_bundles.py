"""Option bundles: options declared once, spelled out in each command that takes them."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from aigw.commands._options import Bundle, with_bundles


def _window(
    since: str = typer.Option("1h", "--since", help="From."),
    until: str | None = typer.Option(None, "--until", help="Until."),
) -> tuple[str, str | None]:
    return since, until


Window = Bundle(_window)
app = typer.Typer()
seen: list[object] = []


@app.command()
@with_bundles
def show(name: str, window: tuple[str, str | None] = Window, loud: bool = False) -> None:
    seen.append((name, window, loud))


def test_a_command_receives_what_the_bundle_builds_from_its_options() -> None:
    seen.clear()
    result = CliRunner().invoke(app, ["x", "--until", "now", "--loud"])
    assert result.exit_code == 0, result.output
    assert seen == [("x", ("1h", "now"), True)]


def test_the_bundles_options_stand_in_the_help_where_the_bundle_does() -> None:
    text = CliRunner().invoke(app, ["--help"], terminal_width=100).stdout
    assert text.index("--since") < text.index("--until") < text.index("--loud")
