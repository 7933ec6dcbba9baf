"""How call log rows look to people: the list/tail table (status coloured) and one row in full
with its payloads pretty-printed (they were redacted before they were stored)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.json import JSON
from rich.text import Text

from aigw.common.log_record import COLUMNS, LogRecord
from aigw.render.output import Column, Output, to_jsonable


def status_text(code: int | None) -> Text:
    """A status code coloured by class; `network` when there was no answer."""
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
    """A latency, yellow when slow and red when very slow."""
    if ms is None:
        return Text("–", style="dim")
    style = "red" if ms >= 5000 else "yellow" if ms >= 2000 else ""
    return Text(f"{ms:,.0f}ms", style=style)


LOG_COLUMNS = [
    Column(
        "time (UTC)", lambda r: r.created_at.strftime("%Y-%m-%d %H:%M:%S"), style="dim", priority=3
    ),
    Column("method", lambda r: r.method, priority=1),
    Column("endpoint", lambda r: Text(r.endpoint), priority=2),
    Column("status", lambda r: status_text(r.status_code), justify="right", priority=4),
    Column("latency", lambda r: latency_text(r.latency_ms), justify="right", priority=2),
    Column(
        "cache",
        lambda r: Text(r.cache_status or "", style="green" if r.cache_status == "hit" else "dim"),
        priority=0,
    ),
    Column("try", lambda r: str(r.attempt or ""), justify="right", style="dim", priority=0),
    Column("id", lambda r: r.id, style="cyan", key=True),  # `aigw logs show ID` takes it
]


def render_logs(out: Output, records: list[LogRecord]) -> None:
    """Log rows as a table, JSON or tab-separated lines."""
    if not records and not out.json_mode and out.to_terminal:
        out.note("(no log rows)")
        return
    out.rows(records, LOG_COLUMNS)


def render_tail_batch(out: Output, records: list[LogRecord], *, first: bool) -> None:
    """Rows as they arrive: JSON lines with --json (one object per line), else table rows
    (the header with the first batch only)."""
    if out.json_mode:
        for record in records:
            sys.stdout.write(json.dumps(to_jsonable(record), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        out.rows(records, LOG_COLUMNS, header=first)


def render_log(out: Output, record: LogRecord) -> None:
    """One log row as a record, or JSON."""
    if out.json_mode:
        out.json(record)
        return
    fields: list[tuple[str, Any]] = []
    for name in COLUMNS:
        value: Any = getattr(record, name)
        if value is None:
            continue
        if name == "status_code":
            fields.append((name, status_text(value)))
        elif name in ("request_payload", "response_payload"):
            text = json.dumps(to_jsonable(value), ensure_ascii=False)
            fields.append((name, JSON(text) if out.to_terminal else text))
        elif name == "created_at":
            fields.append((name, value.isoformat()))
        else:
            fields.append((name, Text(str(value))))
    out.record(record, fields)
