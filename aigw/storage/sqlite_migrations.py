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
    CREATE INDEX ai_gateway_logs_pending ON ai_gateway_logs (created_at)
      WHERE synced_at IS NULL;
    CREATE TABLE agent_ids (
      openai_assistant_id TEXT PRIMARY KEY,
      agent_id TEXT NOT NULL,
      updated_at REAL NOT NULL
    );
    """,
    # 2: resilience state shared by every aigw process (aigw/storage/state.py).
    """
    CREATE TABLE cache_entries (
      key TEXT PRIMARY KEY,              -- sha256 of method, URL, route, credential fingerprint
      tag TEXT NOT NULL,                 -- what a write invalidates: 'HOST:PORT assistant:ID'
      url TEXT NOT NULL,                 -- path and query, for people
      stored_at REAL NOT NULL,           -- Unix seconds
      status INTEGER NOT NULL,
      headers TEXT NOT NULL,             -- JSON list of [name, value]
      body BLOB NOT NULL
    );
    CREATE INDEX cache_entries_tag ON cache_entries (tag);
    CREATE TABLE breaker_state (
      host TEXT PRIMARY KEY,             -- HOST or HOST:PORT of the upstream
      state TEXT NOT NULL,               -- closed, open or half_open
      failures INTEGER NOT NULL,         -- consecutive
      opened_at REAL,
      probe_at REAL,                     -- open: when a probe may go, half_open: when it left
      last_error TEXT
    );
    CREATE TABLE rate_limit_buckets (
      name TEXT PRIMARY KEY,
      tat REAL NOT NULL                  -- GCRA theoretical arrival time, Unix seconds
    );
    CREATE TABLE remembered_keys (
      scope TEXT PRIMARY KEY,            -- the upstream HOST or HOST:PORT
      fingerprint TEXT NOT NULL,         -- sha256 prefix of the gateway key that worked
      announced INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 3: a cheaper write per logged call (bench/log_path.py measures it). Rows get
    # `seq`, their commit order (SQLite writes one transaction at a time, and AUTOINCREMENT
    # hands out ever larger numbers, even after a prune). Sync keeps one cursor in it instead
    # of a per-row `synced_at` with its partial index. `id` loses its unique index: ids are
    # UUIDv7, so `get` finds a row through `created_at`. Rows not yet synced stay pending (the
    # cursor stops before the first of them; re-sending synced rows after it is a no-op upsert
    # remotely).
    """
    CREATE TABLE ai_gateway_logs_v3 (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, -- commit order, never reused: the sync cursor's unit
      id TEXT NOT NULL,                  -- client UUID (v7 since this version)
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
      source TEXT
    );
    INSERT INTO ai_gateway_logs_v3 (
      id, created_at, endpoint, method, status_code, latency_ms, request_payload,
      response_payload, error_message, user_id, agent_id, path, request_id, call_id,
      attempt, route, cache_status, thread_id, run_id, assistant_id, model,
      prompt_tokens, completion_tokens, total_tokens, source
    )
    SELECT
      id, created_at, endpoint, method, status_code, latency_ms, request_payload,
      response_payload, error_message, user_id, agent_id, path, request_id, call_id,
      attempt, route, cache_status, thread_id, run_id, assistant_id, model,
      prompt_tokens, completion_tokens, total_tokens, source
    FROM ai_gateway_logs ORDER BY created_at, rowid;
    CREATE TABLE sync_cursor (
      only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
      seq INTEGER NOT NULL               -- every row up to here is in the remote store
    );
    INSERT INTO sync_cursor (only_row, seq) SELECT 1, coalesce(
      (SELECT min(n.seq) - 1 FROM ai_gateway_logs_v3 n JOIN ai_gateway_logs o ON o.id = n.id
        WHERE o.synced_at IS NULL),
      (SELECT max(seq) FROM ai_gateway_logs_v3),
      0);
    DROP TABLE ai_gateway_logs;
    ALTER TABLE ai_gateway_logs_v3 RENAME TO ai_gateway_logs;
    CREATE INDEX ai_gateway_logs_created_at ON ai_gateway_logs (created_at);
    """,
    # 4: how far each per-process journal had been imported (journals are gone since 7).
    """
    CREATE TABLE journal_marks (
      name TEXT PRIMARY KEY,             -- a file under AIGW_HOME/journal
      offset INTEGER NOT NULL            -- its bytes already in ai_gateway_logs
    );
    """,
    # 5: rows sync passed over (the remote database refused them, or they cannot be read):
    # kept in ai_gateway_logs, listed here with the reason, sent again by `aigw logs sync`.
    """
    CREATE TABLE sync_set_aside (
      seq INTEGER PRIMARY KEY,           -- the row's ai_gateway_logs.seq
      id TEXT NOT NULL,
      reason TEXT NOT NULL,
      set_aside_at REAL NOT NULL         -- Unix seconds
    );
    """,
    # 6: the mirror rows (agents, conversations, messages) a create owes the remote store,
    # kept here and sent by the same sync as log rows (services/records.py).
    """
    CREATE TABLE mirror_outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      kind TEXT NOT NULL,                -- agent | conversation | message
      payload TEXT NOT NULL,             -- JSON: the Mirror method's keyword arguments
      refused TEXT                       -- why the remote database refused it; NULL: pending
    );
    """,
    # 7: rows go straight into ai_gateway_logs, one short transaction per call: no journals.
    """
    DROP TABLE journal_marks;
    """,
    # 8: the gateway's Idempotency-Key per request fingerprint, for a client's retries
    # (aigw/gateway/policies/idempotency.py).
    """
    CREATE TABLE idempotency_keys (
      fingerprint TEXT PRIMARY KEY,      -- sha256 of credentials, method, path, query, body
      key TEXT NOT NULL,                 -- the Idempotency-Key sent upstream
      expires_at REAL NOT NULL           -- Unix seconds
    );
    CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
    """,
    # 9: the agent's model, for rows that name none (the remote functions resolve it from
    # the agents table: the local numbers follow the same rule).
    """
    ALTER TABLE agent_ids ADD COLUMN model TEXT;
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
