"""`aigw metrics`: latency, success rate, errors, cache hits and cost for a time window."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from aigw.commands._options import JsonOption, examples
from aigw.context import app_context
from aigw.errors import AigwError, ExitCode
from aigw.render import Output

EXAMPLES = examples(
    "aigw metrics --since 24h",
    "aigw metrics --since 7d --by agent --model gpt-4o",
    "aigw metrics --since 15m --max-error-rate 5% --max-p95 2s",
)


def metrics(
    ctx: typer.Context,
    since: str = typer.Option(
        "24h", "--since", help="Window start: a duration back (15m, 24h, 7d) or ISO-8601."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Window end (exclusive): a duration back or ISO-8601; default now."
    ),
    by: str = typer.Option("endpoint", "--by", help="Group by endpoint, agent, model or hour."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Only this endpoint (a template or a raw path)."
    ),
    agent: str | None = typer.Option(
        None, "--agent", help="Only this agent: agents.id, name or assistant id."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Only calls of this model (as the call named or answered it)."
    ),
    local: bool = typer.Option(
        False, "--local", help="Read the local store even when a remote one is configured."
    ),
    max_error_rate: str | None = typer.Option(
        None, "--max-error-rate", help="Alert (exit 1) above this failed-call rate, e.g. 5%."
    ),
    max_p95: str | None = typer.Option(
        None, "--max-p95", help="Alert (exit 1) above this p95 latency, e.g. 2s or 800ms."
    ),
    json: bool = JsonOption,
) -> None:
    """Latency, success rate, errors, cache hits and cost.

    Percentiles, the error split, the hourly trend and the cost per agent and model.

    Reads the remote store (Supabase/Postgres) when configured, else the local one. With
    --max-error-rate/--max-p95 it exits 1 naming the threshold that broke (for cron or CI).
    """
    from aigw.services.metrics import MetricsOptions, alert_summary, metrics_report

    options = MetricsOptions(
        since=since,
        until=until,
        by=by,
        endpoint=endpoint,
        agent=agent,
        model=model,
        local=local,
        max_error_rate=max_error_rate,
        max_p95=max_p95,
    )
    report = metrics_report(app_context(ctx), options, datetime.now(UTC))
    out = Output(json)
    if json:
        out.json(report)
    else:
        from aigw.render.metrics_views import render_metrics

        p95_limit = next((a.limit for a in report.alerts if a.threshold == "--max-p95"), None)
        render_metrics(out, report, p95_limit)
    if report.alerts:
        raise AigwError(f"alert: {alert_summary(report.alerts)}", code=ExitCode.API_ERROR)
