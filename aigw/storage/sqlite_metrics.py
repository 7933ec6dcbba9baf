"""`aigw metrics` on the local SQLite store: the same numbers as sql/0002_metrics.sql, in SQL.

Percentiles follow Postgres `percentile_cont` exactly: over the n sorted values of a group, the
fraction p sits at position p·(n−1); the result interpolates linearly between the values at
floor and ceil of that position (`lo + (hi − lo) · frac`, the same float arithmetic Postgres
does). Rows are ranked with a window function; nothing is fetched row by row.
Hours are UTC, formatted as Postgres formats them (`2026-01-31T14:00:00Z`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from aigw.storage.aggregates import (
    GroupStats,
    MetricsQuery,
    ModelTokens,
    UsageStats,
    group_stats,
    model_tokens,
    usage_stats,
)

PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_HOUR = "strftime('%Y-%m-%dT%H:00:00Z', l.created_at, 'unixepoch')"
# The trend's bucket of :bucket seconds (5 min, 1 h, 1 day: all divide a day, so counting
# from 1970 gives the same UTC bins as Postgres's date_bin from year 1).
_BUCKET = (
    "strftime('%Y-%m-%dT%H:%M:00Z', CAST(l.created_at / :bucket AS INTEGER) * :bucket, 'unixepoch')"
)


def agent_rows(mark: str, logs: str = "") -> str:
    """The condition for an agent's rows (`mark` is the agent; `logs` qualifies the log table's
    columns): its agents.id or assistant id, or the agents.id the local map gives the assistant
    of a row that has none, as the remote functions find them by the agents table."""
    return (
        f"({logs}agent_id = {mark} OR {logs}assistant_id = {mark} OR ({logs}agent_id IS NULL"
        f" AND {logs}assistant_id IN (SELECT o.openai_assistant_id FROM agent_ids o"
        f" WHERE o.agent_id = {mark})))"
    )


# The window and filters, with the group key per dimension; shared by both reads.
_WINDOW = f"""
  SELECT
    CASE :by
      WHEN 'endpoint' THEN l.endpoint
      WHEN 'agent' THEN coalesce(l.agent_id, m.agent_id, l.assistant_id)
      WHEN 'model' THEN l.model
      WHEN 'hour' THEN {_HOUR}
      ELSE 'total'
    END AS by_key,
    {_BUCKET} AS hour_key,
    coalesce(l.agent_id, m.agent_id, l.assistant_id) AS agent_key,
    l.model, l.agent_id AS row_agent, m.model AS assistant_model,
    l.call_id, l.status_code, l.latency_ms, l.cache_status, l.prompt_tokens, l.completion_tokens
  FROM ai_gateway_logs l
  LEFT JOIN agent_ids m ON l.agent_id IS NULL AND m.openai_assistant_id = l.assistant_id
  WHERE l.created_at >= :since AND l.created_at < :until
    AND (:endpoint IS NULL OR l.endpoint = :endpoint)
    AND (:agent IS NULL OR {agent_rows(":agent", "l.")})
    AND (:model IS NULL OR l.model = :model)
"""


def _percentile_columns() -> tuple[str, str]:
    """The per-percentile pick (in `picked`) and interpolation (in the final SELECT)."""
    picks: list[str] = []
    finals: list[str] = []
    for name, p in PERCENTILES.items():
        pos = f"({p} * (r.n - 1))"
        lo = f"CAST({pos} AS INTEGER)"  # floor: the position is never negative
        hi = f"({lo} + ({pos} > {lo}))"  # ceil
        picks.append(f"max(CASE WHEN r.i = {lo} THEN r.v END) AS {name}_lo")
        picks.append(f"max(CASE WHEN r.i = {hi} THEN r.v END) AS {name}_hi")
        picks.append(f"max({pos} - {lo}) AS {name}_frac")
        finals.append(f"q.{name}_lo + (q.{name}_hi - q.{name}_lo) * q.{name}_frac")
    return ",\n    ".join(picks), ",\n  ".join(finals)


_PICKS, _FINALS = _percentile_columns()

METRICS_SQL = f"""
WITH w AS ({_WINDOW}),
g AS (
  SELECT 'by' AS dim, by_key AS k, * FROM w
  UNION ALL SELECT 'hour', hour_key, * FROM w
  UNION ALL SELECT 'total', NULL, * FROM w
),
agg AS (
  SELECT dim, k,
    count(DISTINCT call_id) + count(*) FILTER (WHERE call_id IS NULL) AS calls,
    count(*) AS attempts,
    -- a call succeeds at most once (retries stop at the first 2xx), as in Postgres
    count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS successful_calls,
    count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS successful_attempts,
    count(*) FILTER (WHERE status_code BETWEEN 400 AND 499 AND status_code <> 429)
      AS client_errors,
    count(*) FILTER (WHERE status_code = 429) AS rate_limited,
    count(*) FILTER (WHERE status_code BETWEEN 500 AND 599) AS server_errors,
    count(*) FILTER (WHERE status_code IS NULL OR status_code = 0) AS network_errors,
    avg(latency_ms) AS avg_latency_ms,
    count(*) FILTER (WHERE lower(cache_status) = 'hit') AS cache_hits,
    count(*) FILTER (WHERE lower(cache_status) IN ('hit', 'miss', 'stale', 'expired'))
      AS lookups,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens
  FROM g GROUP BY dim, k
),
r AS (
  SELECT dim, k, CAST(latency_ms AS REAL) AS v,
    row_number() OVER (PARTITION BY dim, k ORDER BY latency_ms) - 1 AS i,
    count(*) OVER (PARTITION BY dim, k) AS n
  FROM g WHERE latency_ms IS NOT NULL
),
q AS (
  SELECT r.dim, r.k,
    {_PICKS}
  FROM r GROUP BY r.dim, r.k
)
SELECT a.dim, a.k, NULL, a.calls, a.attempts, a.successful_calls, a.successful_attempts,
  a.client_errors, a.rate_limited, a.server_errors, a.network_errors, a.avg_latency_ms,
  {_FINALS},
  a.cache_hits, a.lookups, a.prompt_tokens, a.completion_tokens
FROM agg a LEFT JOIN q ON q.dim = a.dim AND q.k IS a.k
ORDER BY a.dim, a.k
"""

# An empty window still has its total row, as the Postgres grouping set () gives one: eight
# zero counts, no latency (avg, p50, p95, p99), no cache hits or lookups, no tokens.
EMPTY_TOTAL = ("total", None, None, *(0,) * 8, *(None,) * 4, 0, 0, None, None)

# The cost's model, as the remote functions resolve it: the row's, else its agent's.
_COSTED = f"""
WITH w AS ({_WINDOW}),
c AS (
  SELECT *, coalesce(model, (SELECT o.model FROM agent_ids o WHERE o.agent_id = w.row_agent
                             AND o.model IS NOT NULL LIMIT 1), assistant_model) AS cost_model
  FROM w
)
"""

USAGE_SQL = f"""{_COSTED}
SELECT agent_key, NULL, cost_model, count(*),
  count(*) FILTER (WHERE prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL),
  sum(prompt_tokens), sum(completion_tokens), 0, 0, 0, 0
FROM c GROUP BY agent_key, cost_model
ORDER BY agent_key NULLS LAST, cost_model NULLS LAST  -- as Postgres orders them
"""


MODEL_TREND_SQL = f"""{_COSTED}
SELECT hour_key, cost_model, sum(prompt_tokens), sum(completion_tokens)
FROM c WHERE prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL
GROUP BY hour_key, cost_model
ORDER BY hour_key, cost_model NULLS LAST
"""


def _params(query: MetricsQuery) -> dict[str, Any]:
    return {
        "model": query.model,
        "bucket": query.bucket_s,
        "by": query.by,
        "since": query.since.timestamp() if query.since else float("-inf"),
        "until": query.until.timestamp() if query.until else float("inf"),
        "endpoint": query.endpoint,
        "agent": query.agent,
    }


def metrics(conn: sqlite3.Connection, query: MetricsQuery) -> list[GroupStats]:
    """Per-group, per-hour and total stats of the window; a total row even when empty."""
    rows = conn.execute(METRICS_SQL, _params(query)).fetchall()
    if not any(row[0] == "total" for row in rows):
        rows.append(EMPTY_TOTAL)
    return group_stats(rows)


def usage(conn: sqlite3.Connection, query: MetricsQuery) -> list[UsageStats]:
    """Tokens per (agent, model) in the window (the local store keeps no messages, so there is
    nothing to estimate from)."""
    return usage_stats(conn.execute(USAGE_SQL, _params(query)).fetchall())


def model_trend(conn: sqlite3.Connection, query: MetricsQuery) -> list[ModelTokens]:
    """Recorded tokens per (trend bucket, model) of the window."""
    return model_tokens(conn.execute(MODEL_TREND_SQL, _params(query)).fetchall())


def count_before(conn: sqlite3.Connection, cutoff: datetime) -> int:
    """How many rows were created before `cutoff`."""
    sql = "SELECT count(*) FROM ai_gateway_logs WHERE created_at < ?"
    return int(conn.execute(sql, (cutoff.timestamp(),)).fetchone()[0])
