"""`aigw doctor`: is this machine ready? One line per check, with the fix."""

from __future__ import annotations

import typer

from aigw.commands._options import JsonOption, examples
from aigw.context import app_context
from aigw.errors import ExitCode, UsageError
from aigw.render import Output

app = typer.Typer(
    epilog=examples(
        "aigw doctor",
        "aigw doctor --smoke",
        "aigw doctor --gateway-url http://127.0.0.1:8787/v1",
    ),
    help="Check the set-up. Variables, route, gateway, store, schema, breaker, in order.",
)

MARKS = {
    "ok": "[green]✓[/green]",
    "warn": "[yellow]![/yellow]",
    "fail": "[red]✗[/red]",
    "skip": "[dim]–[/dim]",
}


@app.callback(invoke_without_command=True)
def doctor(
    ctx: typer.Context,
    smoke: bool = typer.Option(
        False, "--smoke", help="Also run the critical endpoints end to end, then clean up."
    ),
    gateway_url: str | None = typer.Option(
        None,
        "--gateway-url",
        help="Check a running `aigw gateway serve` instead: alive, ready, key, circuit, sync "
        "(exit 1 when a check fails, 4 when nothing answers).",
    ),
    json: bool = JsonOption,
) -> None:
    """Run the seed's checklist as checks; exit 1 when any fails."""
    from rich.markup import escape

    from aigw.services.doctor import run_checks, smoke_test

    app_ctx = app_context(ctx)
    code = ExitCode.API_ERROR
    if gateway_url is not None:
        if smoke:
            raise UsageError(
                "--smoke runs through the CLI's route, --gateway-url checks a gateway server",
                hint="for a smoke test through that gateway: aigw --gateway-url URL doctor --smoke",
            )
        from aigw.services.doctor_gateway import check_gateway

        report = check_gateway(app_ctx.settings, gateway_url)
        checks = report.checks
        if not report.reachable:
            code = ExitCode.NETWORK
    else:
        checks = run_checks(app_ctx)
        if smoke:
            checks += smoke_test(app_ctx)
    failed = any(c.status == "fail" for c in checks)
    out = Output(json)
    if json:
        out.json({"ok": not failed, "checks": checks})
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            out.stdout.print(
                f"{MARKS[check.status]} {check.name.ljust(width)}  {escape(check.detail)}",
                highlight=False,
                soft_wrap=True,
            )
            if check.fix and check.status in ("fail", "warn"):
                out.stdout.print(
                    f"  {' ' * width}  [dim]fix: {escape(check.fix)}[/dim]", soft_wrap=True
                )
    if failed:
        raise typer.Exit(code)
