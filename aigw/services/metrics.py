"""`aigw metrics`: the seed's monitoring numbers for a time window, and the alert thresholds.

The store does the aggregation (Repository.metrics / .usage, in SQL); this module picks the
store, derives rates, prices the tokens, fills the hourly trend and checks the thresholds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from aigw.durations import parse_duration, parse_instant
from aigw.errors import UsageError
from aigw.storage.aggregates import GROUP_BY, GroupStats, MetricsQuery, ModelTokens, UsageStats

if TYPE_CHECKING:
    from aigw.context import AppContext
    from aigw.storage.base import Repository

MAX_TREND_POINTS = 24 * 31  # a longer trend shows the buckets that have rows, unfilled
# The trend's bucket from the window's length: up to 6 h in 5 min, up to 2 days in hours,
# beyond in days (UTC) — a few dozen to a few hundred points whatever the window.
BUCKETS = ((6 * 3600, 300, "5m"), (2 * 86400, 3600, "1h"))
DAY_BUCKET = (86400, "1d")
BUCKET_NAMES = {300: "5m", 3600: "1h", 86400: "1d"}


# -- prices -----------------------------------------------------------------------------------
# US dollars per 1,000,000 tokens, (input, output), from OpenAI's public price list. They
# change; an operator sets their own in config (AIGW_PRICES='{"gpt-4o": [2.5, 10]}'), which
# overrides these per model.

Price = tuple[float, float]

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o1-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


def price_table(overrides: dict[str, tuple[float, float]] | None = None) -> dict[str, Price]:
    table = dict(DEFAULT_PRICES)
    table.update({name: (float(i), float(o)) for name, (i, o) in (overrides or {}).items()})
    return table


def price_for(model: str | None, table: dict[str, Price]) -> Price | None:
    """The price of `model`: an exact entry, else the longest entry it starts with, so a dated
    snapshot (gpt-4o-2024-08-06) is priced as its family; None when unknown."""
    if not model:
        return None
    if model in table:
        return table[model]
    family = [name for name in table if model.startswith(name + "-")]
    return table[max(family, key=len)] if family else None


def cost_usd(price: Price | None, tokens_in: int, tokens_out: int) -> float | None:
    if price is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000


class MetricsOptions(NamedTuple):
    since: str = "24h"
    until: str | None = None
    by: str = "endpoint"
    endpoint: str | None = None
    agent: str | None = None
    model: str | None = None
    local: bool = False
    max_error_rate: str | None = None
    max_p95: str | None = None


class GroupRow(NamedTuple):
    key: str | None
    label: str | None
    calls: int
    attempts: int
    successful_calls: int
    successful_attempts: int
    success_rate: float | None  # successful calls / calls
    error_rate: float | None  # 1 - success_rate
    client_errors: int
    rate_limited: int
    server_errors: int
    network_errors: int
    avg_latency_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    cache_hits: int
    cache_lookups: int
    cache_hit_rate: float | None  # hits / cache lookups (hit or miss)


class TrendPoint(NamedTuple):
    start: str  # the bucket's start: 2026-01-31T14:05:00Z
    calls: int
    attempts: int
    p95_ms: float | None
    error_rate: float | None


class CostRow(NamedTuple):
    key: str | None  # agent key (agents.id or assistant id) or model
    label: str | None  # agent name when known
    tokens_in: int
    tokens_out: int
    recorded_tokens: int  # from the logs' usage
    estimated_tokens: int  # the seed's LENGTH(content)/4 over messages
    estimated: bool  # some of the tokens are the estimate
    cost_usd: float | None  # None: no price known for any of its models
    unpriced_models: list[str] = []  # noqa: RUF012  (a tuple's default: never mutated)


class CostPoint(NamedTuple):
    """The recorded tokens of one model in one trend bucket, priced."""

    start: str  # the bucket's start
    model: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: float | None  # None: no price known for the model


class Alert(NamedTuple):
    threshold: str  # --max-error-rate | --max-p95
    limit: float
    value: float
    message: str


class MetricsReport(NamedTuple):
    source: str  # local | postgres | supabase
    since: datetime
    until: datetime
    by: str
    endpoint: str | None
    agent: str | None
    model: str | None
    bucket: str  # the trend's bucket: 5m, 1h or 1d (bucket_for)
    total: GroupRow
    groups: list[GroupRow]
    trend: list[TrendPoint]
    cost_by_agent: list[CostRow]
    cost_by_model: list[CostRow]
    cost_trend: list[CostPoint]  # recorded tokens per bucket and model, priced
    cost_total_usd: float | None
    alerts: list[Alert]


# -- parsing ----------------------------------------------------------------------------------


def parse_fraction(text: str, option: str) -> float:
    """`5%` or `0.05` → 0.05."""
    value = text.strip()
    try:
        rate = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise UsageError(f"{option} expects a rate such as 5% or 0.05, got {text!r}") from None
    if not 0 <= rate <= 1:
        raise UsageError(f"{option} must be between 0% and 100%, got {text!r}")
    return rate


def bucket_for(since: datetime, until: datetime) -> tuple[int, str]:
    """The trend's bucket for a window, in seconds and as written: ≤ 6 h → 5 min, ≤ 2 days →
    1 h, longer → 1 day (the same for `aigw metrics` and the dashboard)."""
    length = (until - since).total_seconds()
    for longest, seconds, name in BUCKETS:
        if length <= longest:
            return seconds, name
    return DAY_BUCKET


def build_query(options: MetricsOptions, now: datetime) -> MetricsQuery:
    if options.by not in GROUP_BY:
        raise UsageError(f"--by expects one of {', '.join(GROUP_BY)}, got {options.by!r}")
    since = parse_instant(options.since, "--since", now)
    until = parse_instant(options.until, "--until", now) if options.until else now
    if since >= until:
        raise UsageError(f"--since ({since:%Y-%m-%d %H:%M}Z) must be before --until")
    endpoint = None
    if options.endpoint:
        from aigw.gateway.endpoints import template

        endpoint = template(options.endpoint)
    bucket_s, _ = bucket_for(since, until)
    return MetricsQuery(
        since,
        until,
        options.by,
        endpoint,
        options.agent or None,
        model=options.model or None,
        bucket_s=bucket_s,
    )


# -- the report -------------------------------------------------------------------------------


def open_store(ctx: AppContext, local: bool) -> tuple[str, Repository]:
    """(kind, repository): the remote store when one is configured and `local` is not set,
    else the local SQLite store. The context closes both after the command."""
    from aigw.storage import remote_kind

    kind = None if local else remote_kind(ctx.settings)
    if kind is None or ctx.remote is None:
        return "local", ctx.repository
    return kind, ctx.remote


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# The counts and latencies a GroupRow carries over from its GroupStats as they are.
_CARRIED = [name for name in GroupRow._fields if name in GroupStats._fields]


def group_row(stats: GroupStats) -> GroupRow:
    success = _ratio(stats.successful_calls, stats.calls)
    return GroupRow(
        key=stats.group_key,
        label=stats.group_label,
        success_rate=success,
        error_rate=None if success is None else 1 - success,
        cache_hit_rate=_ratio(stats.cache_hits, stats.cache_lookups),
        **{name: getattr(stats, name) for name in _CARRIED},
    )


def bucket_keys(
    found: Iterable[str], since: datetime, until: datetime, bucket_s: int = 3600
) -> list[str]:
    """The start of every UTC bucket of the window (`2026-01-31T14:05:00Z`); beyond
    MAX_TREND_POINTS, only the buckets `found` in the store."""
    epoch = since.timestamp()
    start = datetime.fromtimestamp(epoch - epoch % bucket_s, since.tzinfo)
    step = timedelta(seconds=bucket_s)
    if (until - start) > step * MAX_TREND_POINTS:
        return sorted(found)
    keys = []
    moment = start
    while moment < until:
        keys.append(moment.strftime("%Y-%m-%dT%H:%M:00Z"))
        moment += step
    return keys


def trend(
    buckets: Iterable[GroupStats], since: datetime, until: datetime, bucket_s: int = 3600
) -> list[TrendPoint]:
    """One point per bucket of the window, buckets without rows as zero calls."""
    found = {h.group_key: group_row(h) for h in buckets if h.group_key}
    points = []
    for key in bucket_keys(found, since, until, bucket_s):
        row = found.get(key)
        if row is None:
            points.append(TrendPoint(key, 0, 0, None, None))
        else:
            points.append(TrendPoint(key, row.calls, row.attempts, row.p95_ms, row.error_rate))
    return points


def cost_rows(usage: list[UsageStats], by: str, prices: dict[str, Price]) -> list[CostRow]:
    """Usage per (agent, model) summed per agent or per model, each part priced by its model."""
    parts: dict[str | None, list[UsageStats]] = defaultdict(list)
    for row in usage:
        parts[row.agent_key if by == "agent" else row.model].append(row)
    rows: list[CostRow] = []
    for key, items in parts.items():
        recorded_in = sum(i.prompt_tokens or 0 for i in items)
        recorded_out = sum(i.completion_tokens or 0 for i in items)
        est_in = sum(i.est_prompt_tokens for i in items)
        est_out = sum(i.est_completion_tokens for i in items)
        if recorded_in + recorded_out + est_in + est_out == 0:
            continue
        costs, unpriced = [], []
        for item in items:
            tokens_in = (item.prompt_tokens or 0) + item.est_prompt_tokens
            tokens_out = (item.completion_tokens or 0) + item.est_completion_tokens
            if tokens_in + tokens_out == 0:
                continue
            cost = cost_usd(price_for(item.model, prices), tokens_in, tokens_out)
            if cost is None:
                unpriced.append(item.model or "(unknown)")
            else:
                costs.append(cost)
        rows.append(
            CostRow(
                key=key,
                label=next((i.agent_name for i in items if i.agent_name), None)
                if by == "agent"
                else None,
                tokens_in=recorded_in + est_in,
                tokens_out=recorded_out + est_out,
                recorded_tokens=recorded_in + recorded_out,
                estimated_tokens=sum(i.est_tokens for i in items),
                estimated=any(i.est_messages for i in items),
                cost_usd=sum(costs) if costs else None,
                unpriced_models=sorted(set(unpriced)),
            )
        )
    rows.sort(key=lambda r: (-(r.cost_usd or 0), -(r.tokens_in + r.tokens_out), str(r.key)))
    return rows


def cost_points(tokens: list[ModelTokens], prices: dict[str, Price]) -> list[CostPoint]:
    """The recorded tokens of each (bucket, model), priced by the model."""
    points = []
    for row in tokens:
        tokens_in, tokens_out = row.prompt_tokens or 0, row.completion_tokens or 0
        cost = cost_usd(price_for(row.model, prices), tokens_in, tokens_out)
        points.append(CostPoint(row.bucket, row.model, tokens_in, tokens_out, cost))
    return points


def check_alerts(total: GroupRow, options: MetricsOptions) -> list[Alert]:
    """The thresholds the window broke; an empty window breaks none."""
    alerts: list[Alert] = []
    if options.max_error_rate is not None:
        limit = parse_fraction(options.max_error_rate, "--max-error-rate")
        if total.error_rate is not None and total.error_rate > limit:
            alerts.append(
                Alert(
                    "--max-error-rate",
                    limit,
                    total.error_rate,
                    f"error rate {total.error_rate:.1%} is above --max-error-rate {limit:.1%}"
                    f" ({total.calls - total.successful_calls} of {total.calls} calls failed)",
                )
            )
    if options.max_p95 is not None:
        limit_ms = parse_duration(options.max_p95, "--max-p95", unit="ms") * 1000
        if total.p95_ms is not None and total.p95_ms > limit_ms:
            alerts.append(
                Alert(
                    "--max-p95",
                    limit_ms,
                    total.p95_ms,
                    f"p95 latency {total.p95_ms:.0f} ms is above --max-p95 {limit_ms:.0f} ms",
                )
            )
    return alerts


def metrics_report(ctx: AppContext, options: MetricsOptions, now: datetime) -> MetricsReport:
    """The whole report: validate, read the aggregates from one store, derive the rest."""
    query = build_query(options, now)
    # Thresholds are validated before any database work, so a typo fails fast.
    if options.max_error_rate is not None:
        parse_fraction(options.max_error_rate, "--max-error-rate")
    if options.max_p95 is not None:
        parse_duration(options.max_p95, "--max-p95", unit="ms")
    kind, store = open_store(ctx, options.local)
    stats, usage = store.aggregates(query)
    tokens = store.model_trend(query)
    report = report_from(kind, query, stats, usage, price_table(ctx.settings.prices), tokens)
    return report._replace(alerts=check_alerts(report.total, options))


def report_from(
    source: str,
    query: MetricsQuery,
    stats: list[GroupStats],
    usage: list[UsageStats],
    prices: dict[str, Price],
    tokens: list[ModelTokens] | None = None,
) -> MetricsReport:
    """The report (without alerts) from the store's aggregates of one window: the one place
    the store's numbers become the ones people read (the CLI and the dashboard alike)."""
    assert query.since is not None and query.until is not None
    total = group_row(next(s for s in stats if s.dimension == "total"))
    groups = [group_row(s) for s in stats if s.dimension == "by"]
    if query.by == "hour":
        groups.sort(key=lambda g: g.key or "")
    else:
        groups.sort(key=lambda g: (-g.attempts, g.key or ""))
    by_agent = cost_rows(usage, "agent", prices)
    by_model = cost_rows(usage, "model", prices)
    priced = [row.cost_usd for row in by_model if row.cost_usd is not None]
    return MetricsReport(
        source=source,
        since=query.since,
        until=query.until,
        by=query.by,
        endpoint=query.endpoint,
        agent=query.agent,
        model=query.model,
        bucket=BUCKET_NAMES.get(query.bucket_s, f"{query.bucket_s}s"),
        total=total,
        groups=groups,
        trend=trend(
            [s for s in stats if s.dimension == "hour"], query.since, query.until, query.bucket_s
        ),
        cost_by_agent=by_agent,
        cost_by_model=by_model,
        cost_trend=cost_points(tokens or [], prices),
        cost_total_usd=sum(priced) if priced else None,
        alerts=[],
    )


def alert_summary(alerts: list[Alert]) -> str:
    return "; ".join(a.message for a in alerts)
