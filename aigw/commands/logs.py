"""`aigw logs`: the call log. `sync` sends the local outbox's pending rows to the remote store."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import typer

from aigw.commands._options import JsonOption
from aigw.context import app_context
from aigw.render import Output

app = typer.Typer(help="The call log: local outbox and remote store.", no_args_is_help=True)


@app.command("sync")
def sync(
    ctx: typer.Context,
    batch_size: int = typer.Option(
        1000, "--batch-size", min=1, max=50_000, help="Rows per remote transaction."
    ),
    json: bool = JsonOption,
) -> None:
    """Send pending log rows to Supabase/Postgres (idempotent; safe to interrupt and re-run)."""
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
