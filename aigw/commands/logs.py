"""`aigw logs`: the call log. `sync` sends the local outbox's pending rows to the remote store."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import typer

from aigw.commands._options import Bundle, JsonOption, examples, with_bundles
from aigw.context import app_context
from aigw.render import Output

app = typer.Typer(help="The call log: local outbox and remote store.", no_args_is_help=True)
SET_ASIDE_SHOWN = 5  # rows set aside named on stderr; --json lists them all


@app.command("sync", epilog=examples("aigw logs sync", "aigw logs sync --json"))
def sync(
    ctx: typer.Context,
    batch_size: int = typer.Option(
        1000, "--batch-size", min=1, max=50_000, help="Rows per remote transaction."
    ),
    json: bool = JsonOption,
) -> None:
    """Send pending log rows to Supabase/Postgres. Idempotent; safe to interrupt and re-run."""
    from aigw.services.sync import sync_command

    out = Output(json)
    bar: Any = None
    live: Any = nullcontext()
    if out.interactive:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        live = Progress(
            TextColumn("syncing logs"), BarColumn(), MofNCompleteColumn(), console=out.stderr
        )
        bar = live.add_task("sync", total=None)

    def on_start(total: int) -> None:
        if bar is not None:
            live.update(bar, total=total)

    def progress(count: int) -> None:
        if bar is not None:
            live.advance(bar, count)

    with live:
        report = sync_command(
            app_context(ctx), batch_size=batch_size, on_start=on_start, progress=progress
        )
    if json:
        out.json(report)
    else:
        out.success(
            f"synced {report.synced} rows to {report.remote} in {report.seconds:.1f} s"
            f" ({report.pending} pending)"
        )
    _warn_set_aside(
        out,
        "rows",
        "fix the cause (often `aigw migrate`)",
        [f"row {row['id']}: {row['reason']}" for row in report.set_aside_rows],
    )
    _warn_set_aside(
        out,
        "mirror rows",
        "fix the cause",
        [
            f"{row['kind']} of {row['object']}: {row['reason']}"
            for row in report.mirror_set_aside_rows
        ],
    )


# -- reading and retention: list, show, tail, prune (services/logs.py) ----------------------

LocalOption = typer.Option(
    False, "--local", help="Read the local store even when a remote one is configured."
)
SinceOption = typer.Option(None, "--since", help="From: a duration back (1h, 7d) or ISO-8601.")
UntilOption = typer.Option(None, "--until", help="Until (exclusive): a duration back or ISO-8601.")


def _log_filters(
    endpoint: str | None = typer.Option(None, "--endpoint", help="A template or a raw path."),
    status: str | None = typer.Option(
        None, "--status", help="2xx, 4xx, 429, 5xx, a code, or network."
    ),
    method: str | None = typer.Option(None, "--method", help="GET, POST, DELETE…"),
    agent: str | None = typer.Option(None, "--agent", help="agents.id or assistant id."),
) -> dict[str, str | None]:
    return {"endpoint": endpoint, "status": status, "method": method, "agent": agent}


# What `list` and `tail` filter the rows by.
FilterOptions: Any = Bundle(_log_filters)


@app.command(
    "list",
    epilog=examples(
        "aigw logs list --since 1h --status 5xx",
        "aigw logs list --endpoint /v1/assistants | cut -f8",
    ),
)
@with_bundles
def list_(
    ctx: typer.Context,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    filters: dict[str, str | None] = FilterOptions,
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many rows."),
    local: bool = LocalOption,
    json: bool = JsonOption,
) -> None:
    """Log rows, newest first. Time, method, endpoint, status, latency, cache status."""
    from datetime import UTC, datetime

    from aigw.render.logs_views import render_logs
    from aigw.services.logs import LogQuery, list_logs

    query = LogQuery(since=since, until=until, limit=limit, **filters)
    records = list_logs(app_context(ctx), query, local=local, now=datetime.now(UTC))
    render_logs(Output(json), records)


@app.command(
    "show",
    epilog=examples(
        "aigw logs show 0193a5c2-7e1f-7c3a-9d2e-5b8f1a2c3d4e",
        "aigw logs show 0193a5c2-7e1f-7c3a-9d2e-5b8f1a2c3d4e --json",
    ),
)
def show(
    ctx: typer.Context,
    record_id: str = typer.Argument(..., metavar="ID", help="The row's id (from `logs list`)."),
    local: bool = LocalOption,
    json: bool = JsonOption,
) -> None:
    """One log row with every column. Payloads pretty-printed (already redacted)."""
    from aigw.render.logs_views import render_log
    from aigw.services.logs import show_log

    render_log(Output(json), show_log(app_context(ctx), record_id, local=local))


@app.command(
    "tail", epilog=examples("aigw logs tail -f", "aigw logs tail -n 50 --json | jq .status_code")
)
@with_bundles
def tail(
    ctx: typer.Context,
    follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing new rows."),
    lines: int = typer.Option(20, "--lines", "-n", min=1, max=1000, help="Rows shown first."),
    filters: dict[str, str | None] = FilterOptions,
    interval: str = typer.Option("1s", "--interval", help="Time between polls: 1s, 500ms."),
    local: bool = LocalOption,
    json: bool = JsonOption,
) -> None:
    """The newest rows, oldest first. With -f, new rows as they arrive (JSON lines with --json)."""
    from datetime import UTC, datetime

    from aigw.durations import parse_duration
    from aigw.render.logs_views import render_tail_batch
    from aigw.services.logs import LogQuery, build_filter, follow
    from aigw.services.metrics import open_store

    seconds = parse_duration(interval, "--interval")
    query = LogQuery(limit=lines, **filters)
    where = build_filter(query, datetime.now(UTC))
    _, store = open_store(app_context(ctx), local)
    out = Output(json)
    from aigw.render.output import reader_gone

    # Polling more often than ten times a second would only load the store.
    for n, batch in enumerate(follow(store, where, interval=max(seconds, 0.1))):
        render_tail_batch(out, batch, first=n == 0)
        if not follow_:
            break
        if reader_gone():  # `| head -1` has what it wanted: stop now, not at the next row
            raise BrokenPipeError


@app.command(
    "prune",
    epilog=examples(
        "aigw logs prune --older-than 30d --dry-run", "aigw logs prune --older-than 30d --yes"
    ),
)
def prune(
    ctx: typer.Context,
    older_than: str = typer.Option(..., "--older-than", help="Retention, e.g. 30d or 2w."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would go."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    local: bool = typer.Option(False, "--local", help="Only the local store, not the remote."),
    delete_unsynced: int | None = typer.Option(
        None,
        "--delete-unsynced",
        metavar="COUNT",
        min=0,
        help="Also delete the local rows that never reached the remote store; COUNT must be "
        "how many there are (a dry run says).",
    ),
    json: bool = JsonOption,
) -> None:
    """Delete old log rows. Those older than --older-than, local and remote.

    Local rows not yet in the remote store are kept unless --delete-unsynced names their count.
    """
    from datetime import UTC, datetime

    from aigw.commands._options import confirm
    from aigw.services.logs import nothing_to_prune, prune_logs, prune_question, prune_summary

    app_ctx = app_context(ctx)
    now = datetime.now(UTC)
    options: dict[str, Any] = {"local_only": local, "now": now, "delete_unsynced": delete_unsynced}
    out = Output(json)
    if not dry_run:
        preview = prune_logs(app_ctx, older_than, dry_run=True, **options)
        if nothing_to_prune(preview):  # nothing to confirm either
            out.json(preview) if json else out.note(prune_summary(preview))
            return
        confirm(prune_question(preview, delete_unsynced), yes)
    report = prune_logs(app_ctx, older_than, dry_run=dry_run, **options)
    if json:
        out.json(report)
        return
    message = prune_summary(report)
    out.note(message) if dry_run else out.success(message)


def _warn_set_aside(out: Output, what: str, fix: str, lines: list[str]) -> None:
    """Say which rows the database refused (the first few, then how many more)."""
    if not lines:
        return
    out.warn(
        f"{len(lines)} {what} set aside, kept locally: the database refused them; "
        f"{fix} and run `aigw logs sync` again"
    )
    for line in lines[:SET_ASIDE_SHOWN]:
        out.warn(line)
    if len(lines) > SET_ASIDE_SHOWN:
        more = len(lines) - SET_ASIDE_SHOWN
        out.warn(f"… and {more} more (`aigw logs sync --json` lists every one)")
