"""The examples that end every command's --help (as `gh` does), in one shape.

    @app.command("list", short_help="…", epilog=examples("aigw things list", "…"))

tests/test_help.py checks that every command has one to three, and that each parses.
"""

from __future__ import annotations


def examples(*commands: str) -> str:
    """An epilog listing COMMANDS as typed. Click rewraps help text; the \\b line keeps this
    block as written."""
    return "\b\nExamples:\n" + "\n".join(f"  $ {command}" for command in commands)
