"""`aigw dashboard`: what the page shows for a window, read through the metrics service.

One query layer: the window's report is `report_from` over the store's aggregates, exactly what
`aigw metrics --json` prints for the same window and filters (its trend bucket and its cost per
model over time included). The page adds the previous window of the same length (for the
tiles' change), every bucket of the window as a full row (the same aggregates the report's
trend comes from), and the latest failed calls.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from aigw.common.log_record import LogRecord
from aigw.errors import UsageError
from aigw.services.metrics import (
    GroupRow,
    MetricsOptions,
    MetricsReport,
    bucket_keys,
    build_query,
    group_row,
    open_store,
    price_table,
    report_from,
)
from aigw.storage.aggregates import GroupStats
from aigw.storage.base import LogFilter

if TYPE_CHECKING:
    from aigw.context import AppContext
    from aigw.storage.aggregates import MetricsQuery
    from aigw.storage.base import Repository

LATEST_ERRORS = 20
# The failed calls: every status class that is not a success, and no answer at all.
FAILED_STATUSES = ("4xx", "5xx", "network")
FILTERS = ("since", "until", "endpoint", "agent", "model")


class WindowTotals(NamedTuple):
    """The previous window's headline numbers, to compare the tiles with."""

    since: datetime
    until: datetime
    total: GroupRow
    cost_total_usd: float | None


class BucketRow(NamedTuple):
    start: str  # 2026-01-31T14:05:00Z (the report's bucket: 5 min, 1 h or 1 day)
    stats: GroupRow


class ErrorRow(NamedTuple):
    id: str
    created_at: datetime
    method: str
    endpoint: str
    status_code: int | None
    latency_ms: float | None
    error_message: str | None  # redacted again here: other writers' rows may carry secrets


class DashboardView(NamedTuple):
    report: MetricsReport  # == `aigw metrics --json` for the same window and filters
    previous: WindowTotals
    buckets: list[BucketRow]
    errors: list[ErrorRow]


def dashboard_options(params: dict[str, str], *, local: bool) -> MetricsOptions:
    """The page's query parameters as metrics options; an unknown one is refused."""
    unknown = sorted(set(params) - set(FILTERS))
    if unknown:
        raise UsageError(
            f"unknown parameter {unknown[0]!r}: the dashboard takes {', '.join(FILTERS)}"
        )
    return MetricsOptions(
        since=params.get("since") or "24h",
        until=params.get("until") or None,
        endpoint=params.get("endpoint") or None,
        agent=params.get("agent") or None,
        model=params.get("model") or None,
        local=local,
    )


def _empty_row() -> GroupRow:
    counts = (0,) * 8  # calls … network_errors
    latencies = (None,) * 4  # avg, p50, p95, p99
    return group_row(GroupStats("hour", None, None, *counts, *latencies, 0, 0, None, None))


def bucket_rows(stats: list[GroupStats], query: MetricsQuery) -> list[BucketRow]:
    """Every bucket of the window as a full row, buckets without calls as zeros."""
    assert query.since is not None and query.until is not None
    found = {s.group_key: group_row(s) for s in stats if s.dimension == "hour" and s.group_key}
    empty = _empty_row()
    return [
        BucketRow(key, found.get(key) or empty._replace(key=key))
        for key in bucket_keys(found, query.since, query.until, query.bucket_s)
    ]


def latest_errors(
    store: Repository, query: MetricsQuery, limit: int = LATEST_ERRORS
) -> list[LogRecord]:
    """The newest failed attempts of the window: the newest of each failed status class, merged."""
    where = LogFilter(
        since=query.since,
        until=query.until,
        endpoint=query.endpoint,
        agent=query.agent,
        model=query.model,
        limit=limit,
    )
    newest = [store.records(where._replace(status=status)) for status in FAILED_STATUSES]
    merged = heapq.merge(*newest, key=lambda r: (r.created_at, r.id), reverse=True)
    return [record for _, record in zip(range(limit), merged, strict=False)]


def dashboard_view(ctx: AppContext, options: MetricsOptions, now: datetime) -> DashboardView:
    """The window's report, the previous window's totals, the hours and the latest errors."""
    query = build_query(options, now)
    assert query.since is not None and query.until is not None
    kind, store = open_store(ctx, options.local)
    prices = price_table(ctx.settings.prices)
    stats, usage = store.aggregates(query)
    report = report_from(kind, query, stats, usage, prices, store.model_trend(query))
    earlier_since = query.since - (query.until - query.since)
    before = query._replace(since=earlier_since, until=query.since)
    earlier = report_from(kind, before, *store.aggregates(before), prices)
    from aigw.redact import redactor_for

    redactor = redactor_for(ctx.settings)
    errors = [
        ErrorRow(
            r.id,
            r.created_at,
            r.method,
            r.endpoint,
            r.status_code,
            r.latency_ms,
            None if r.error_message is None else redactor.text(r.error_message),
        )
        for r in latest_errors(store, query)
    ]
    return DashboardView(
        report=report,
        previous=WindowTotals(earlier_since, query.since, earlier.total, earlier.cost_total_usd),
        buckets=bucket_rows(stats, query),
        errors=errors,
    )


def log_row(ctx: AppContext, record_id: str, *, local: bool) -> LogRecord:
    """One log row for the page (`aigw logs show`'s), its message and payloads redacted again."""
    from dataclasses import replace

    from aigw.redact import redactor_for
    from aigw.services.logs import show_log

    record = show_log(ctx, record_id, local=local)
    redactor = redactor_for(ctx.settings)
    message = record.error_message
    return replace(
        record,
        error_message=None if message is None else redactor.text(message),
        request_payload=redactor.value(record.request_payload),
        response_payload=redactor.value(record.response_payload),
    )
