"""Generated call-log rows for the metrics tests, loaded identically into the real Postgres
(migrated) and a real SQLite file, plus the seed's example queries to compare against."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from aigw.common.log_record import COLUMNS, LogRecord
from aigw.storage.postgres import remote_row
from aigw.storage.sqlite import SQLiteRepository

# A fixed "now", minutes past the hour, so windows never cut a row in two by accident.
NOW = datetime(2026, 3, 10, 12, 30, 0, tzinfo=UTC)

# The seed's "Dashboard de Monitoramento" queries, verbatim.
SEED_LATENCY_24H = """
SELECT
  endpoint,
  AVG(latency_ms) as avg_latency,
  COUNT(*) as total_calls,
  COUNT(CASE WHEN status_code >= 200 AND status_code < 300 THEN 1 END) as successful_calls
FROM ai_gateway_logs
WHERE created_at > NOW() - INTERVAL '24 hours'
GROUP BY endpoint
ORDER BY avg_latency DESC;
"""

SEED_COST = """
SELECT
  a.name,
  COUNT(m.id) as total_messages,
  SUM(LENGTH(m.content)) / 4 as estimated_tokens -- Aproximação
FROM agents a
JOIN conversations c ON c.agent_id = a.id
JOIN messages m ON m.conversation_id = c.id
WHERE m.created_at > NOW() - INTERVAL '30 days'
GROUP BY a.id, a.name
ORDER BY estimated_tokens DESC;
"""

# The same latency query over a given window (%(since)s, %(until)s) instead of the last 24 h.
SEED_LATENCY = SEED_LATENCY_24H.replace(
    "created_at > NOW() - INTERVAL '24 hours'", "created_at > %(since)s AND created_at < %(until)s"
)
assert SEED_LATENCY != SEED_LATENCY_24H

PERCENTILES = """
SELECT endpoint,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
  percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
  percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)
FROM ai_gateway_logs
WHERE created_at > %(since)s AND created_at < %(until)s
GROUP BY endpoint
"""

ENDPOINTS = [
    "/v1/assistants",
    "/v1/threads",
    "/v1/threads/{thread_id}/runs",
    "/v1/threads/{thread_id}/runs/{run_id}",
    "/v1/threads/{thread_id}/messages",
]
STATUSES = [200] * 12 + [201, 400, 404, 429, 429, 500, 503, None]


def generated_rows(count: int, *, seed: int = 7, hours: int = 30) -> list[LogRecord]:
    """Rows over `hours` before NOW: retried calls (shared call_id), ties in latency, every
    status class, cache hits and misses, token usage on some, integer latencies."""
    rng = random.Random(seed)
    rows: list[LogRecord] = []
    while len(rows) < count:
        at = NOW - timedelta(seconds=rng.randrange(1, hours * 3600 - 1), microseconds=0)
        endpoint = rng.choice(ENDPOINTS)
        call = str(uuid.UUID(int=rng.getrandbits(128))) if rng.random() < 0.8 else None
        tries = rng.choice([1, 1, 1, 2, 3]) if call else 1
        model = rng.choice(["gpt-4o", "gpt-4o-mini", None])
        for attempt in range(1, tries + 1):
            last = attempt == tries
            status = rng.choice(STATUSES) if last else rng.choice([429, 500, 503, None])
            rows.append(
                LogRecord(
                    endpoint=endpoint,
                    method=rng.choice(["GET", "POST"]),
                    created_at=at + timedelta(seconds=attempt),
                    status_code=status,
                    # a coarse grid, so ties are common
                    latency_ms=None
                    if status is None and rng.random() < 0.5
                    else float(rng.choice(range(10, 3000, 10))),
                    call_id=call,
                    attempt=attempt if call else None,
                    cache_status=rng.choice(["hit", "miss", None]),
                    model=model,
                    assistant_id=rng.choice(["asst_a1", "asst_b2", None]),
                    prompt_tokens=rng.randrange(10, 900) if model and last else None,
                    completion_tokens=rng.randrange(5, 300) if model and last else None,
                    source="aigw" if call else None,
                )
            )
    return rows[:count]


def load_postgres(url: str, rows: list[LogRecord]) -> None:
    columns = ", ".join(COLUMNS)
    marks = ", ".join(["%s"] * len(COLUMNS))
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO ai_gateway_logs ({columns}) VALUES ({marks})",
            [remote_row(r) for r in rows],
        )


def load_sqlite(path: Path, rows: list[LogRecord]) -> SQLiteRepository:
    store = SQLiteRepository(path)
    store.write(rows)
    return store
