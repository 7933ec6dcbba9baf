"""Call-log rows: made up for a test, or read back from the local store and from Postgres."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from aigw.common.log_record import LogRecord, new_id
from aigw.settings import Settings
from aigw.storage.base import LogFilter
from aigw.storage.sqlite import SQLiteRepository


def local_rows(home: Path) -> list[dict[str, Any]]:
    """Every row of the local store, oldest first, as plain dicts."""
    with sqlite3.connect(home / "aigw.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM ai_gateway_logs ORDER BY created_at, rowid")
        return [dict(row) for row in rows]


def log_rows(home: Path) -> list[LogRecord]:
    """Every call-log row in the local store under `home`, oldest first."""
    store = SQLiteRepository(Settings(home=home).state_db_path)
    try:
        return list(reversed(store.records(LogFilter(limit=None))))
    finally:
        store.close()


def remote_rows(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return list(cur.execute("SELECT * FROM ai_gateway_logs ORDER BY created_at, id"))


def remote_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT id) FROM ai_gateway_logs").fetchone()
        assert row is not None and row[0] == row[1]
        return int(row[0])


def records(count: int, *, start: datetime | None = None, **fields: Any) -> list[LogRecord]:
    """`count` plausible records, one millisecond apart, oldest first."""
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    return [
        LogRecord(
            endpoint=fields.get("endpoint", "/v1/threads/{thread_id}/runs"),
            method=fields.get("method", "POST"),
            # Like the logging layer's rows: a UUIDv7 of the row's own time.
            id=new_id(int((start + timedelta(milliseconds=i)).timestamp() * 1000)),
            created_at=start + timedelta(milliseconds=i),
            status_code=fields.get("status_code", 200),
            latency_ms=fields.get("latency_ms", 12.5 + i % 7),
            path=f"/v1/threads/thread_{i}/runs",
            thread_id=f"thread_{i}",
            call_id=str(uuid.uuid4()),
            attempt=1,
            route="gateway",
            user_id=fields.get("user_id"),
            agent_id=fields.get("agent_id"),
            assistant_id=fields.get("assistant_id"),
        )
        for i in range(count)
    ]


def settings_for(home: Path, **values: Any) -> Settings:
    return Settings(home=home, **values)
