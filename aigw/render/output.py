"""Render data as JSON (for scripts) or Rich tables (for people); status lines go to stderr.

Rich decides colour itself: none when piped or when NO_COLOR is set.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, JustifyMethod, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def to_jsonable(value: Any) -> Any:
    """API objects (pydantic models), dataclasses and containers as plain JSON values."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def fmt_time(epoch: int | float | None) -> str:
    """A Unix timestamp as a short UTC time, the way the API's `created_at` reads best."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_cell(value: Any) -> str | Text:
    if isinstance(value, Text):  # literal text (e.g. a message): never read as Rich markup
        return value
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(to_jsonable(value), ensure_ascii=False) if value else ""
    return str(value)


@dataclass(frozen=True)
class Column:
    header: str
    get: Callable[[Any], Any]
    style: str | None = None
    justify: JustifyMethod = "left"
    no_wrap: bool = False


class Output:
    """Where a command writes. `json_mode` is the command's `--json` flag."""

    def __init__(
        self,
        json_mode: bool = False,
        stdout: Console | None = None,
        stderr: Console | None = None,
    ):
        self.json_mode = json_mode
        # Piped output is read by grep and scripts: give tables room instead of wrapping at 80.
        piped_width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
        self.stdout = stdout or Console(soft_wrap=False, highlight=False, width=piped_width)
        self.stderr = stderr or Console(stderr=True, highlight=False, soft_wrap=True)

    @property
    def interactive(self) -> bool:
        """Spinners and live status only when stderr is a terminal and JSON is not asked."""
        return self.stderr.is_terminal and not self.json_mode

    def busy(self, message: str, when: bool = True) -> AbstractContextManager[Any]:
        """A spinner on stderr while slow work runs (e.g. `--all` pages); nothing when piped."""
        if when and self.interactive:
            return self.stderr.status(escape(message))
        return nullcontext()

    def fetched_rows(
        self, fetch: Callable[[], Sequence[Any]], columns: Iterable[Column], *, all_pages: bool
    ) -> None:
        """A listing: fetch it (a spinner while `--all` follows pages), then print it."""
        with self.busy("fetching every page…", when=all_pages):
            items = fetch()
        self.rows(items, columns)

    # -- data ------------------------------------------------------------------------------
    def json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def rows(
        self, items: Sequence[Any], columns: Iterable[Column], *, title: str | None = None
    ) -> None:
        """A list: a JSON array, or a table with one row per item."""
        if self.json_mode:
            self.json(list(items))
            return
        columns = list(columns)
        table = Table(title=title, header_style="bold", show_edge=False, pad_edge=False)
        for col in columns:
            table.add_column(
                col.header,
                style=col.style,
                justify=col.justify,
                no_wrap=col.no_wrap,
            )
        for item in items:
            table.add_row(*(fmt_cell(col.get(item)) for col in columns))
        if not items:
            self.note("(none)")
            return
        self.stdout.print(table)

    def record(
        self,
        item: Any,
        fields: Iterable[tuple[str, Any]] | None = None,
        *,
        title: str | None = None,
    ) -> None:
        """One object: JSON, or a two-column field/value table."""
        if self.json_mode:
            self.json(item)
            return
        if fields is None:
            data = to_jsonable(item)
            fields = data.items() if isinstance(data, dict) else [("value", data)]
        table = Table(title=title, show_header=False, show_edge=False, pad_edge=False, box=None)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column(overflow="fold")
        for name, value in fields:
            if value is None or value == "" or value == {} or value == []:
                continue
            table.add_row(name, value if isinstance(value, Table) else fmt_cell(value))
        self.stdout.print(table)

    def print(self, renderable: RenderableType) -> None:
        """Free-form human output (panels, replies); never used in JSON mode."""
        if not self.json_mode:
            self.stdout.print(renderable)

    # -- status (stderr) -------------------------------------------------------------------
    def note(self, message: str) -> None:
        self.stderr.print(message, style="dim", markup=False)

    def success(self, message: str) -> None:
        if not self.json_mode:
            self.stderr.print(f"[green]✓[/green] {escape(message)}", highlight=False)

    def warn(self, message: str) -> None:
        self.stderr.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)

    def error(self, message: str, hint: str | None = None) -> None:
        self.stderr.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False)
        if hint:
            self.stderr.print(f"[dim]hint: {escape(hint)}[/dim]", highlight=False)
