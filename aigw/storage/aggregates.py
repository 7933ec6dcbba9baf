"""The aggregate reads behind `aigw metrics`: their query, their result rows, and the
arguments of the SQL functions that compute them.

Every backend computes these in the database: Postgres and Supabase call the SQL functions of
`sql/0002_metrics.sql` (directly or through `rpc()`), SQLite runs the equivalent SQL in
`aigw/storage/sqlite_metrics.py`. Rows are never fetched to be aggregated in Python.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

Dimension = Literal["by", "hour", "total"]
GROUP_BY = ("endpoint", "agent", "model", "hour")


class MetricsQuery(NamedTuple):
    """A window [since, until) and optional filters; `by` picks the grouping of the 'by' rows."""

    since: datetime | None = None
    until: datetime | None = None
    by: str = "endpoint"
    endpoint: str | None = None  # a template: /v1/threads/{thread_id}/runs
    agent: str | None = None  # agents.id, agent name (remote) or assistant id
    model: str | None = None  # only rows whose model is this one
    bucket_s: int = 3600  # the trend's bucket (the 'hour' rows): 5 min, 1 h or 1 day


class GroupStats(NamedTuple):
    """One group of log rows. `attempts`, `successful_attempts` and `avg_latency_ms` are the
    seed's total_calls, successful_calls and avg_latency; percentiles are percentile_cont."""

    dimension: str  # by | hour | total
    group_key: str | None
    group_label: str | None
    calls: int
    attempts: int
    successful_calls: int
    successful_attempts: int
    client_errors: int  # 4xx other than 429
    rate_limited: int  # 429
    server_errors: int  # 5xx
    network_errors: int  # no status code: the request never got an answer
    avg_latency_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    cache_hits: int
    cache_lookups: int
    prompt_tokens: int | None
    completion_tokens: int | None


class UsageStats(NamedTuple):
    """Tokens of one (agent, model): recorded usage, plus the seed's message-length estimate
    for conversations with no recorded usage (`est_*`, zero when there is none)."""

    agent_key: str | None
    agent_name: str | None
    model: str | None
    attempts: int
    usage_rows: int
    prompt_tokens: int | None
    completion_tokens: int | None
    est_messages: int
    est_prompt_tokens: int
    est_completion_tokens: int
    est_tokens: int


def _build(cls: Any, row: Any) -> Any:
    """A row type from a DB row: a tuple in field order, or a dict by name (PostgREST)."""
    names = cls._fields
    values = [row.get(n) for n in names] if isinstance(row, dict) else list(row)
    # the annotations, as text ("int | None"): NamedTuple keeps them as ForwardRefs
    types = {n: getattr(t, "__forward_arg__", t) for n, t in cls.__annotations__.items()}
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        if value is not None and types[name].startswith("int"):
            values[i] = int(value)
        elif value is not None and types[name].startswith("float"):
            values[i] = float(value)
    return cls(*values)


class ModelTokens(NamedTuple):
    """Tokens recorded in one trend bucket for one model (the dashboard's cost over time)."""

    bucket: str  # its start: 2026-01-31T14:05:00Z
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


def model_tokens(rows: Any) -> list[ModelTokens]:
    """ModelTokens from the database's rows of aigw_metrics_model_trend."""
    return [_build(ModelTokens, row) for row in rows]


def group_stats(rows: Any) -> list[GroupStats]:
    """GroupStats from the database's rows of aigw_metrics."""
    return [_build(GroupStats, row) for row in rows]


def usage_stats(rows: Any) -> list[UsageStats]:
    """UsageStats from the database's rows of aigw_metrics_usage."""
    return [_build(UsageStats, row) for row in rows]


DEFAULT_BUCKET_S = 3600


def metrics_args(query: MetricsQuery) -> dict[str, Any]:
    """The SQL functions' named arguments. The model and the bucket (sql/0008) only when not
    their defaults, so a database migrated up to 0003 still answers a default query."""
    args: dict[str, Any] = {
        "p_since": query.since,
        "p_until": query.until,
        "p_by": query.by,
        "p_endpoint": query.endpoint,
        "p_agent": query.agent,
    }
    if query.model is not None:
        args["p_model"] = query.model
    if query.bucket_s != DEFAULT_BUCKET_S:
        args["p_bucket_seconds"] = query.bucket_s
    return args


def usage_args(query: MetricsQuery) -> dict[str, Any]:
    """The arguments of aigw_metrics_usage: the window's, without the grouping."""
    args = metrics_args(query)
    del args["p_by"]
    args.pop("p_bucket_seconds", None)
    return args


def model_trend_args(query: MetricsQuery) -> dict[str, Any]:
    """The arguments of aigw_metrics_model_trend: the usage's and the bucket size."""
    args = usage_args(query)
    args["p_bucket_seconds"] = query.bucket_s
    return args
