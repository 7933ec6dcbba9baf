"""Render data as JSON (for scripts), tab-separated text (pipes) or Rich tables (terminals);
status lines go to stderr.

Piped, a listing is one header line and one tab-separated line per row, a record one
`field<TAB>value` line per field — no box characters, no padding, so `cut -f1` gives IDs. On a
terminal, tables fit its width: ID columns are never wrapped or cut; other columns shrink, and
the least important go first; a cell longer than MAX_CELL_CHARS is cut with an ellipsis (never
an ID; piped output and --json carry every character). Rich decides colour itself: none when
NO_COLOR is set. Rich is imported only when something is drawn with it: a piped one-line error
(cron, scripts, the breaker's fast refusal) is written plainly, without paying for the import.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.console import Console, JustifyMethod, RenderableType
    from rich.text import Text


# Terminal control sequences (CSI, OSC, other escapes) and control characters but newline and
# tab. Upstream text (names, messages, errors) is shown with its content and without them, so
# an API answer can never move the cursor, retitle the terminal or hide what follows.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[@-_]?"  # other escapes
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # control characters but tab and newline
)


def printable(text: str) -> str:
    """`text` without terminal control sequences: the one place upstream text is made safe."""
    return _CONTROL.sub("", text)


def escape(text: str) -> str:
    """Text with Rich markup characters escaped."""
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


def reader_gone() -> bool:
    """Has the reader of a piped stdout closed its end (e.g. `| head -1` got its line)?"""
    import select

    if sys.stdout.isatty() or not hasattr(select, "poll"):
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLERR)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError):
        return False


def fmt_time(epoch: int | float | None) -> str:
    """A Unix timestamp as a short UTC time, the way the API's `created_at` reads best."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_cell(value: Any) -> str | Text:
    """A value as a table cell: printable text, control characters shown."""
    rich_text = sys.modules.get("rich.text")
    if rich_text is not None and isinstance(value, rich_text.Text):
        if _CONTROL.search(value.plain):  # literal text (e.g. a message): never Rich markup
            value = rich_text.Text(printable(value.plain), style=value.style)
        return value
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(to_jsonable(value), ensure_ascii=False) if value else ""
    return printable(str(value))


# On a terminal a cell is cut after this many characters, so one huge field (instructions,
# a message, an upstream's error) cannot flood the screen or stall the table's layout.
MAX_CELL_CHARS = 2000


def bounded(cell: str | Text) -> str | Text:
    """A terminal cell cut after MAX_CELL_CHARS, saying how much was left out."""
    length = len(cell) if isinstance(cell, str) else len(cell.plain)
    if length <= MAX_CELL_CHARS:
        return cell
    tail = f"… ({length - MAX_CELL_CHARS:,} more characters; --json shows all)"
    if isinstance(cell, str):
        return cell[:MAX_CELL_CHARS] + tail
    cut = cell[:MAX_CELL_CHARS]
    cut.append(tail, style="dim")
    return cut


# Record fields that hold an object's ID under the object's name (assistants_views).
_ID_FIELDS = frozenset({"thread", "assistant", "run", "agent"})


def _is_id(name: str) -> bool:
    """A record field that holds an ID (never cut): `id`, `thread_id`, `call id`, `run`…"""
    name = name.lower()
    return name in _ID_FIELDS or name.replace("_", " ").split(" ")[-1] == "id"


def plain(value: Any) -> str:
    """A cell as one line of plain text, for tab-separated output."""
    cell = fmt_cell(value)
    text = cell if isinstance(cell, str) else cell.plain
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


class Column(NamedTuple):
    header: str
    get: Callable[[Any], Any]
    style: str | None = None
    justify: JustifyMethod = "left"
    no_wrap: bool = False
    key: bool = False  # an ID people copy: shown whole, never wrapped, cut or dropped
    priority: int = 1  # on a narrow terminal, lower priorities go first


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
        """The Rich console on stdout, made on first use."""
        if self._stdout is None:
            from rich.console import Console

            # Piped output is read by grep and scripts: give tables room, do not wrap at 80.
            piped_width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
            self._stdout = Console(soft_wrap=False, highlight=False, width=piped_width)
        return self._stdout

    @property
    def stderr(self) -> Console:
        """The Rich console on stderr, made on first use."""
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
    def to_terminal(self) -> bool:
        """Is stdout a terminal (tables), or a pipe or file (tab-separated lines)?"""
        if self._stdout is not None:
            return self._stdout.is_terminal
        return sys.stdout.isatty()

    @property
    def stderr_is_terminal(self) -> bool:
        """Whether stderr is a terminal."""
        if self._stderr is not None:
            return self._stderr.is_terminal
        return sys.stderr.isatty()

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
        """Write a value as indented JSON on stdout."""
        sys.stdout.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def tsv(self, headers: Sequence[str] | None, lines: Iterable[Sequence[str]]) -> None:
        """Tab-separated lines (a header line first, when given), for pipes and scripts."""
        text = "".join("\t".join(line) + "\n" for line in lines)
        sys.stdout.write(("\t".join(headers) + "\n" if headers else "") + text)
        sys.stdout.flush()

    def rows(
        self,
        items: Sequence[Any],
        columns: Iterable[Column],
        *,
        title: str | None = None,
        header: bool = True,
    ) -> None:
        """A list: a JSON array, tab-separated lines, or a table with one row per item.
        `header=False` continues a listing (e.g. `logs tail -f`) without a new header."""
        if self.json_mode:
            self.json(list(items))
            return
        columns = list(columns)
        if not items and self.to_terminal:
            if header:
                self.note("(none)")
            return
        if not self.to_terminal:  # an empty listing is its header line: stderr stays quiet
            headers = [col.header for col in columns] if header else None
            self.tsv(headers, ([plain(col.get(item)) for col in columns] for item in items))
            return
        self.stdout.print(self._fitted_table(items, columns, title=title, header=header))

    def _fitted_table(
        self, items: Sequence[Any], columns: list[Column], *, title: str | None, header: bool
    ) -> Any:
        from rich.cells import cell_len
        from rich.table import Table

        cells = [
            [
                fmt_cell(col.get(item)) if col.key else bounded(fmt_cell(col.get(item)))
                for col in columns
            ]
            for item in items
        ]

        def width(cell: Any) -> int:
            return cell_len(cell) if isinstance(cell, str) else cell.cell_len

        widths = [
            max([len(col.header), *(width(row[k]) for row in cells)])
            for k, col in enumerate(columns)
        ]
        shown = columns_that_fit(
            widths,
            [col.key for col in columns],
            [col.priority for col in columns],
            self.stdout.width,
        )
        table = Table(
            title=title, header_style="bold", show_edge=False, pad_edge=False, show_header=header
        )
        for k in shown:
            col = columns[k]
            if col.key:  # its own width: Rich shrinks the wrappable columns instead
                table.add_column(col.header, style=col.style, no_wrap=True, width=widths[k])
            else:
                table.add_column(col.header, style=col.style, justify=col.justify)
        for row in cells:
            table.add_row(*(row[k] for k in shown))
        return table

    def record(
        self,
        item: Any,
        fields: Iterable[tuple[str, Any]] | None = None,
        *,
        title: str | None = None,
    ) -> None:
        """One object: JSON, `field<TAB>value` lines, or a two-column field/value table."""
        if self.json_mode:
            self.json(item)
            return
        if fields is None:
            data = to_jsonable(item)
            fields = data.items() if isinstance(data, dict) else [("value", data)]
        shown = [
            (name, value)
            for name, value in fields
            if not (value is None or value == "" or value == {} or value == [])
        ]
        if not self.to_terminal:
            self.tsv(None, ([name, plain(value)] for name, value in shown))
            return
        from rich.table import Table

        table = Table(title=title, show_header=False, show_edge=False, pad_edge=False, box=None)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column(overflow="fold")
        for name, value in shown:
            if isinstance(value, Table):
                table.add_row(name, value)
            else:
                cell = fmt_cell(value)
                table.add_row(name, cell if _is_id(name) else bounded(cell))
        self.stdout.print(table)

    def print(self, renderable: RenderableType) -> None:
        """Free-form human output (panels, replies); never used in JSON mode."""
        if not self.json_mode:
            self.stdout.print(renderable)

    # -- status (stderr) -------------------------------------------------------------------
    def note(self, message: str) -> None:
        """A status line on stderr."""
        message = printable(message)
        if self._plain_stderr():
            self._line(message)
        else:
            self.stderr.print(message, style="dim", markup=False)

    def _labelled(self, label: str, style: str, message: str, *, whole: bool = False) -> None:
        """`label message` on stderr, the label (or the `whole` line) in `style` on a terminal."""
        if self._plain_stderr():
            self._line(f"{label} {message}")
        elif whole:
            self.stderr.print(f"[{style}]{label} {escape(message)}[/{style}]", highlight=False)
        else:
            self.stderr.print(f"[{style}]{label}[/{style}] {escape(message)}", highlight=False)

    def success(self, message: str) -> None:
        """A ✓ line on stderr (not in JSON mode)."""
        if not self.json_mode:
            self._labelled("✓", "green", message)

    def warn(self, message: str) -> None:
        """A `warning:` line on stderr."""
        self._labelled("warning:", "yellow", printable(message))

    def error(self, message: str, hint: str | None = None) -> None:
        """An `error:` line on stderr, and its `hint:` line."""
        self._labelled("error:", "bold red", printable(message))
        if hint:
            self._labelled("hint:", "dim", printable(hint), whole=True)


# -- fitting a table to the terminal: ID columns keep their whole width; other columns shrink,
# and the least important go first when even that is not enough.

# Rich draws a column with one space of padding each side and a rule between columns.
GAP = 3
NARROWEST = 6  # a non-ID column narrower than this reads as noise: drop one instead


def columns_that_fit(
    widths: Sequence[int], keys: Sequence[bool], priorities: Sequence[int], room: int
) -> list[int]:
    """Indexes of the columns to show: every key column, and the others in order of priority
    (ties: the leftmost first) while each can still have NARROWEST characters."""
    shown = list(range(len(widths)))

    def needed(indexes: list[int]) -> int:
        own = sum(widths[i] if keys[i] else min(widths[i], NARROWEST) for i in indexes)
        return own + GAP * (len(indexes) - 1)

    droppable = sorted((i for i in shown if not keys[i]), key=lambda i: (priorities[i], -i))
    while needed(shown) > room and droppable:
        shown.remove(droppable.pop(0))
    return shown
