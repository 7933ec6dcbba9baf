"""`aigw breaker`: show and reset the circuit breaker kept in the local store."""

from __future__ import annotations

import typer

from aigw.commands._options import JsonOption, examples
from aigw.context import app_context
from aigw.render import Column, Output
from aigw.render.output import fmt_time

app = typer.Typer(help="Show or reset the circuit breaker.", no_args_is_help=True)

CIRCUIT_COLUMNS = [
    Column("host", lambda s: s.host + (" (configured)" if s.configured else ""), no_wrap=True),
    Column("state", lambda s: s.state),
    Column("failures", lambda s: s.failures, justify="right"),
    Column("opened", lambda s: fmt_time(s.opened_at) if s.opened_at else ""),
    Column("next probe", lambda s: f"in {s.next_probe_in:.0f} s" if s.next_probe_in else ""),
    Column("last error", lambda s: s.last_error or ""),
]


@app.command("status", epilog=examples("aigw breaker status", "aigw breaker status --json"))
def status(ctx: typer.Context, json: bool = JsonOption) -> None:
    """Each upstream host's circuit. Closed, open (refusing) or half_open (probing)."""
    from aigw.services.breaker import breaker_status

    Output(json).rows(breaker_status(app_context(ctx)), CIRCUIT_COLUMNS)


@app.command(
    "reset",
    epilog=examples("aigw breaker reset", "aigw breaker reset --host gateway.ai.vercel.app"),
)
def reset(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None, "--host", help="HOST or HOST:PORT (default: every circuit that is not closed)."
    ),
    every_host: bool = typer.Option(False, "--all", help="Reset every host's circuit."),
    json: bool = JsonOption,
) -> None:
    """Close the circuit now. No wait for the cool-down and a probe. Also lifts the shared
    rate-limit pause an upstream's 429 set."""
    from aigw.services.breaker import breaker_reset, rate_limit_reset

    was_open = breaker_reset(app_context(ctx), host, every_host=every_host)
    pauses = rate_limit_reset(app_context(ctx))
    out = Output(json)
    if json:
        out.json({"closed": [s.host for s in was_open], "rate_limit_reset": pauses})
        return
    if pauses:
        out.success("rate-limit pause lifted")
    for status in was_open:
        out.success(
            f"circuit closed for {status.host} (was {status.state} after {status.failures} "
            f"failures{f': {status.last_error}' if status.last_error else ''})"
        )
    if not was_open:
        out.note(f"no circuit was open{f' for {host}' if host else ''}; nothing to close")
