"""Option bundles and small parsers shared by every command group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from aigw.errors import UsageError

JsonOption = typer.Option(False, "--json", help="Print JSON (API objects as-is; lists as arrays).")
YesOption = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
MetadataOption = typer.Option(
    None, "--metadata", "-m", metavar="KEY=VALUE", help="Metadata pair; repeatable."
)
LimitOption = typer.Option(None, "--limit", min=1, max=100, help="Page size (1–100).")
OrderOption = typer.Option(None, "--order", help="asc or desc by created_at.")
AfterOption = typer.Option(None, "--after", help="Cursor: list objects after this ID.")
BeforeOption = typer.Option(None, "--before", help="Cursor: list objects before this ID.")
AllOption = typer.Option(False, "--all", help="Follow pages until the end.")


def parse_pairs(pairs: list[str] | None, option: str = "--metadata") -> dict[str, str] | None:
    """`["k=v", …]` → dict; None when the option was not given (so updates leave it alone)."""
    if pairs is None or not pairs:
        return None
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} expects KEY=VALUE, got {pair!r}")
        result[key] = value
    return result


def read_text(path: Path, option: str) -> str:
    """A file's text, or `-` for stdin, with a one-line error instead of a traceback."""
    if str(path) == "-":
        import sys

        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{option}: {path} is not UTF-8 text") from None


def read_json(path: Path, option: str) -> Any:
    text = read_text(path, option)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{option}: {path} is not valid JSON (line {exc.lineno}: {exc.msg})"
        ) from None


def confirm(question: str, yes: bool) -> None:
    """Ask unless --yes; without a terminal to ask on, refuse rather than guess."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question} — refusing without confirmation", hint="pass --yes")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)
