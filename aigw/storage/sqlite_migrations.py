"""The local SQLite store's schema, as an ordered list of migrations.

Entry N (1-based) takes the file from `PRAGMA user_version` N-1 to N. To add tables (cache,
breaker state, rate-limit buckets…) append an entry at the END; never edit or reorder a released
one. Each entry is a script of plain statements, applied in one transaction together with the
new user_version, so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: call logs (the outbox) and the assistant → agents.id map the mirror fills.
    """
    CREATE TABLE ai_gateway_logs (
      id TEXT PRIMARY KEY,
      created_at REAL NOT NULL,          -- Unix seconds, UTC
      endpoint TEXT NOT NULL,
      method TEXT NOT NULL,
      status_code INTEGER,
      latency_ms REAL,
      request_payload TEXT,              -- JSON text, redacted
      response_payload TEXT,
      error_message TEXT,
      user_id TEXT,
      agent_id TEXT,
      path TEXT,
      request_id TEXT,
      call_id TEXT,
      attempt INTEGER,
      route TEXT,
      cache_status TEXT,
      thread_id TEXT,
      run_id TEXT,
      assistant_id TEXT,
      model TEXT,
      prompt_tokens INTEGER,
      completion_tokens INTEGER,
      total_tokens INTEGER,
      source TEXT,
      synced_at REAL                     -- NULL while pending for the remote store
    );
    CREATE INDEX ai_gateway_logs_created_at ON ai_gateway_logs (created_at);
    CREATE INDEX ai_gateway_logs_endpoint_created_at ON ai_gateway_logs (endpoint, created_at);
    CREATE INDEX ai_gateway_logs_pending ON ai_gateway_logs (created_at)
      WHERE synced_at IS NULL;
    CREATE TABLE agent_ids (
      openai_assistant_id TEXT PRIMARY KEY,
      agent_id TEXT NOT NULL,
      updated_at REAL NOT NULL
    );
    """,
]


def statements(script: str) -> list[str]:
    """A migration script split into single statements (sqlite3 runs one per execute)."""
    import sqlite3

    found: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                found.append(current.strip())
            current = ""
    if current.strip():
        found.append(current.strip())
    return found
