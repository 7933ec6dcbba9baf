"""How call log rows look to people: the list/tail table (status coloured) and one row in full
with its payloads pretty-printed (they were redacted before they were stored)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import box
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from aigw.render.output import Output, to_jsonable
from aigw.storage.base import COLUMNS, LogRecord


def status_text(code: int | None) -> Text:
    if code is None:
        return Text("network", style="bold red")
    if 200 <= code < 300:
        style = "green"
    elif code == 429:
        style = "magenta"
    elif 400 <= code < 500:
        style = "yellow"
    elif code >= 500:
        style = "bold red"
    else:
        style = ""
    return Text(str(code), style=style)


def latency_text(ms: float | None) -> Text:
    if ms is None:
        return Text("–", style="dim")
    style = "red" if ms >= 5000 else "yellow" if ms >= 2000 else ""
    return Text(f"{ms:,.0f}ms", style=style)


def logs_table(records: list[LogRecord]) -> Table:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("time (UTC)", style="dim", no_wrap=True)
    table.add_column("method", no_wrap=True)
    table.add_column("endpoint", overflow="fold", min_width=20)
    table.add_column("status", justify="right", no_wrap=True)
    table.add_column("latency", justify="right", no_wrap=True)
    table.add_column("cache", no_wrap=True)
    table.add_column("try", justify="right", style="dim", no_wrap=True)
    table.add_column("id", style="cyan", overflow="fold")  # never cut: `logs show ID`
    for r in records:
        table.add_row(
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.method,
            Text(r.endpoint),
            status_text(r.status_code),
            latency_text(r.latency_ms),
            Text(r.cache_status or "", style="green" if r.cache_status == "hit" else "dim"),
            str(r.attempt or ""),
            r.id,
        )
    return table


def render_logs(out: Output, records: list[LogRecord]) -> None:
    if out.json_mode:
        out.json(records)
    elif records:
        out.print(logs_table(records))
    else:
        out.note("(no log rows)")


def render_tail_batch(out: Output, records: list[LogRecord]) -> None:
    """Rows as they arrive: JSON lines with --json (one object per line), else table rows."""
    if out.json_mode:
        for record in records:
            sys.stdout.write(json.dumps(to_jsonable(record), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif records:
        out.print(logs_table(records))


def render_log(out: Output, record: LogRecord) -> None:
    if out.json_mode:
        out.json(record)
        return
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for name in COLUMNS:
        value: Any = getattr(record, name)
        if value is None:
            continue
        if name == "status_code":
            table.add_row(name, status_text(value))
        elif name in ("request_payload", "response_payload"):
            table.add_row(name, JSON(json.dumps(to_jsonable(value), ensure_ascii=False)))
        elif name == "created_at":
            table.add_row(name, value.isoformat())
        else:
            table.add_row(name, Text(str(value)))
    out.print(table)
