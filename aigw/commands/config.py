"""`aigw config show`: the effective configuration, its sources, and the route."""

from __future__ import annotations

import typer

from aigw.commands._options import JsonOption, examples
from aigw.context import app_context
from aigw.render import Column, Output

app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


@app.command("show", epilog=examples("aigw config show", "aigw config show --json"))
def show(ctx: typer.Context, json: bool = JsonOption) -> None:
    """Every setting and where it came from. Flag, env, .env or default; secrets masked."""
    from aigw.services.config import config_report

    app_ctx = app_context(ctx)
    report = config_report(app_ctx.settings, app_ctx.flags)
    out = Output(json)
    if json:
        out.json(report)
        return
    out.rows(
        report["settings"],
        [
            Column("variable", lambda r: r["variable"], style="cyan"),
            Column("value", lambda r: r["value"]),
            Column("source", lambda r: r["source"], style="dim"),
        ],
    )
    out.print(f"\nroute: [bold]{report['route']}[/bold] → {report['base_url']}")
