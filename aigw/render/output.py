"""Render data as JSON (for scripts) or Rich tables (for people); status lines go to stderr.

Rich decides colour itself: none when piped or when NO_COLOR is set. Rich is imported only
when something is drawn with it: a piped one-line error (cron, scripts, the breaker's fast
refusal) is written plainly, without paying for the import.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.console import Console, JustifyMethod, RenderableType
    from rich.text import Text


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def to_jsonable(value: Any) -> Any:
    """API objects (pydantic models), dataclasses, named tuples and containers as JSON values."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple: an object
        return {k: to_jsonable(v) for k, v in zip(value._fields, value, strict=True)}
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
    rich_text = sys.modules.get("rich.text")
    if rich_text is not None and isinstance(value, rich_text.Text):
        return value  # literal text (e.g. a message): never read as Rich markup
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(to_jsonable(value), ensure_ascii=False) if value else ""
    return str(value)


class Column(NamedTuple):
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
        self._stdout = stdout
        self._stderr = stderr

    @property
    def stdout(self) -> Console:
        if self._stdout is None:
            from rich.console import Console

            # Piped output is read by grep and scripts: give tables room, do not wrap at 80.
            piped_width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
            self._stdout = Console(soft_wrap=False, highlight=False, width=piped_width)
        return self._stdout

    @property
    def stderr(self) -> Console:
        if self._stderr is None:
            from rich.console import Console

            self._stderr = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._stderr

    def _plain_stderr(self) -> bool:
        """No terminal and no injected console: Rich would add nothing to a status line."""
        return self._stderr is None and not sys.stderr.isatty()

    def _line(self, text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

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
        from rich.table import Table

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
        from rich.table import Table

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
        if self._plain_stderr():
            self._line(message)
        else:
            self.stderr.print(message, style="dim", markup=False)

    def success(self, message: str) -> None:
        if self.json_mode:
            return
        if self._plain_stderr():
            self._line(f"✓ {message}")
        else:
            self.stderr.print(f"[green]✓[/green] {escape(message)}", highlight=False)

    def warn(self, message: str) -> None:
        if self._plain_stderr():
            self._line(f"warning: {message}")
        else:
            self.stderr.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)

    def error(self, message: str, hint: str | None = None) -> None:
        if self._plain_stderr():
            self._line(f"error: {message}" + (f"\nhint: {hint}" if hint else ""))
            return
        self.stderr.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False)
        if hint:
            self.stderr.print(f"[dim]hint: {escape(hint)}[/dim]", highlight=False)
