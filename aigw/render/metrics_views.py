"""How `aigw metrics` looks to people: the per-group table with bad values coloured, the
per-hour trend as sparklines, and the cost tables. `--json` bypasses all of this."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from aigw.render.output import Output

if TYPE_CHECKING:  # the report's shape only: rendering never calls a service
    from aigw.services.metrics import CostRow, GroupRow, MetricsReport, TrendPoint

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60
# Colour thresholds when the run gave none: below 99% success is yellow, below 95% red.
WARN_SUCCESS, BAD_SUCCESS = 0.99, 0.95


def fmt_ms(value: float | None) -> str:
    """Milliseconds, in seconds from ten seconds up; `–` when none."""
    if value is None:
        return "–"
    return f"{value / 1000:.2f}s" if value >= 10_000 else f"{value:.0f}ms"


def fmt_rate(value: float | None) -> str:
    """A rate as a percentage; `–` when none."""
    return "–" if value is None else f"{value:.1%}"


def fmt_count(value: int | None) -> str:
    """A count with thousands separators."""
    return f"{value:,}" if value else "0"


def fmt_usd(value: float | None) -> str:
    """US dollars, with four decimals below one dollar."""
    if value is None:
        return "–"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def success_style(rate: float | None) -> str:
    """The colour of a success rate: yellow, then red, below the thresholds."""
    if rate is None:
        return "dim"
    if rate < BAD_SUCCESS:
        return "bold red"
    return "yellow" if rate < WARN_SUCCESS else "green"


def latency_style(value: float | None, limit_ms: float | None) -> str:
    """Red when a latency is over the --max-p95 limit."""
    if value is None or limit_ms is None:
        return ""
    return "bold red" if value > limit_ms else ""


def error_cell(count: int, style: str) -> Text:
    """An error count, dim when zero."""
    return Text(fmt_count(count), style=style if count else "dim")


def group_cells(row: GroupRow, p95_limit: float | None) -> list[Text | str]:
    """One group's cells in the per-group table."""
    return [
        fmt_count(row.calls),
        fmt_count(row.attempts),
        Text(fmt_rate(row.success_rate), style=success_style(row.success_rate)),
        error_cell(row.client_errors, "yellow"),
        error_cell(row.rate_limited, "yellow"),
        error_cell(row.server_errors, "red"),
        error_cell(row.network_errors, "red"),
        fmt_ms(row.avg_latency_ms),
        fmt_ms(row.p50_ms),
        Text(fmt_ms(row.p95_ms), style=latency_style(row.p95_ms, p95_limit)),
        fmt_ms(row.p99_ms),
        fmt_rate(row.cache_hit_rate),
    ]


def groups_table(report: MetricsReport, p95_limit: float | None) -> Table:
    """The per-group table of the window, with the total last."""
    window = f"{report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC"
    table = Table(
        title=f"by {report.by} · {window} · {report.source} store",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    # Numbers are never cut; a long name wraps instead.
    table.add_column(report.by, overflow="fold", min_width=16)
    for header in ("calls", "attempts", "success", "4xx", "429", "5xx", "net"):
        table.add_column(header, justify="right", no_wrap=True)
    for header in ("avg", "p50", "p95", "p99", "cache"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in report.groups:
        name = row.label or row.key or "(none)"
        table.add_row(Text(name), *group_cells(row, p95_limit))
    table.add_section()
    table.add_row(Text("total", style="bold"), *group_cells(report.total, p95_limit))
    return table


def sparkline(values: Sequence[float | None]) -> str:
    """One bar per value, scaled to the largest; gaps (no data) as spaces."""
    known = [v for v in values if v is not None]
    top = max(known, default=0)
    if top <= 0:
        return "".join(" " if v is None else BARS[0] for v in values)
    return "".join(
        " " if v is None else BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))]
        for v in values
    )


def squeeze(points: list[TrendPoint], width: int) -> list[TrendPoint]:
    """At most `width` points: neighbours merged (calls summed, the worst p95 kept)."""
    if len(points) <= width:
        return points
    size = -(-len(points) // width)
    merged = []
    for start in range(0, len(points), size):
        chunk = points[start : start + size]
        p95s = [p.p95_ms for p in chunk if p.p95_ms is not None]
        merged.append(
            chunk[0]._replace(
                calls=sum(p.calls for p in chunk),
                attempts=sum(p.attempts for p in chunk),
                p95_ms=max(p95s) if p95s else None,
                error_rate=None,
            )
        )
    return merged


BUCKET_WORDS = {"5m": ("5 min", 5), "1h": ("hour", 60), "1d": ("day", 1440)}


def trend_table(points: list[TrendPoint], bucket: str = "1h") -> Table:
    """Calls, p95 and errors per hour as sparklines."""
    shown = squeeze(points, SPARK_WIDTH)
    word, minutes = BUCKET_WORDS.get(bucket, (bucket, 0))
    merged = -(-len(points) // len(shown)) if shown else 1
    per = word if merged == 1 else f"{merged} × {word}"
    table = Table(title=f"trend (one bar per {per}, UTC)", box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column(no_wrap=True)
    table.add_column(style="dim")
    calls = [float(p.calls) for p in shown]
    p95 = [p.p95_ms for p in shown]
    table.add_row(
        "calls", Text(sparkline(calls), style="cyan"), f"max {max(calls, default=0):,.0f}"
    )
    known = [v for v in p95 if v is not None]
    table.add_row(
        "p95", Text(sparkline(p95), style="magenta"), f"max {fmt_ms(max(known, default=None))}"
    )
    if shown:
        cut = 16 if minutes < 60 else 13 if minutes == 60 else 10
        first, last = shown[0].start[:cut], shown[-1].start[:cut]
        table.add_row("", Text(f"{first} … {last}".replace("T", " "), style="dim"), "")
    return table


def cost_table(rows: list[CostRow], by: str) -> Table:
    """Tokens and cost per agent or model."""
    table = Table(title=f"cost per {by}", header_style="bold", show_edge=False, pad_edge=False)
    table.add_column(by, overflow="fold")
    table.add_column("tokens in", justify="right")
    table.add_column("tokens out", justify="right")
    table.add_column("source")
    table.add_column("est. cost", justify="right")
    for row in rows:
        source = "estimated" if row.estimated and not row.recorded_tokens else "usage"
        if row.estimated and row.recorded_tokens:
            source = "usage + estimated"
        cost = fmt_usd(row.cost_usd)
        if row.unpriced_models:
            cost += f" (no price: {', '.join(row.unpriced_models)})"
        table.add_row(
            Text(row.label or row.key or "(none)"),
            fmt_count(row.tokens_in),
            fmt_count(row.tokens_out),
            Text(source, style="yellow" if row.estimated else "dim"),
            cost,
        )
    return table


# The TSV header of each number of a group, and the GroupRow field it comes from.
TSV_COLUMNS = {
    "calls": "calls",
    "attempts": "attempts",
    "success_rate": "success_rate",
    "client_errors": "client_errors",
    "rate_limited": "rate_limited",
    "server_errors": "server_errors",
    "network_errors": "network_errors",
    "avg_ms": "avg_latency_ms",
    "p50_ms": "p50_ms",
    "p95_ms": "p95_ms",
    "p99_ms": "p99_ms",
    "cache_hit_rate": "cache_hit_rate",
}


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}" if value < 1 else f"{value:.1f}"


def tsv_cells(row: GroupRow) -> list[str]:
    """A group's numbers as plain values (no units, no thousands separators) for scripts:
    counts as integers, rates and latencies as decimals."""
    values = [getattr(row, field) for field in TSV_COLUMNS.values()]
    return [str(v) if isinstance(v, int) else _number(v) for v in values]


def metrics_tsv(out: Output, report: MetricsReport) -> None:
    """Piped: one header line and one tab-separated line per group, then the total (the trend
    and the cost tables are in --json)."""
    from aigw.render.output import plain

    headers = [report.by, "name", *TSV_COLUMNS]
    lines = [
        [plain(row.key or "(none)"), plain(row.label or ""), *tsv_cells(row)]
        for row in report.groups
    ]
    lines.append(["total", "", *tsv_cells(report.total)])
    out.tsv(headers, lines)


def render_metrics(out: Output, report: MetricsReport, p95_limit_ms: float | None) -> None:
    """The report as tables on a terminal, tab-separated lines otherwise."""
    if not out.to_terminal:
        metrics_tsv(out, report)
        return
    parts: list[Table] = [groups_table(report, p95_limit_ms)]
    if report.total.calls:
        parts.append(trend_table(report.trend, report.bucket))
    if report.cost_by_agent:
        parts.append(cost_table(report.cost_by_agent, "agent"))
    if report.cost_by_model:
        parts.append(cost_table(report.cost_by_model, "model"))
    out.print(Group(*[item for part in parts for item in (part, Text(""))]))
    if report.cost_total_usd is not None:
        out.note(f"estimated cost of the window: {fmt_usd(report.cost_total_usd)}")
    if not report.total.calls:
        out.note("no calls in this window")
