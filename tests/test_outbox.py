"""The local SQLite outbox: concurrent processes, its migration list, durability of each row."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aigw.sandbox import Sandbox
from aigw.storage.sqlite import SQLiteRepository, connect, migrate
from aigw.storage.sqlite_migrations import MIGRATIONS
from tests.logging_fixtures import local_rows, records

CALLS = textwrap.dedent(
    """
    from aigw.context import AppContext

    app = AppContext()
    for _ in range(50):
        app.openai.beta.assistants.list(limit=1)
    app.close()
    """
)


def test_eight_processes_making_fifty_calls_each_leave_four_hundred_rows(
    sandbox: Sandbox, isolated_env: Path
) -> None:
    env = {
        **os.environ,
        "AI_GATEWAY_URL": sandbox.url,
        "GATEWAY_API_KEY": "gk-test",
        "OPENAI_API_KEY": "sk-test-0000000000000000abcd",
        "AIGW_CACHE_TTL": "0",  # every call goes over HTTP
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CALLS], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(8)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()
        assert b"locked" not in err
    rows = local_rows(isolated_env)
    assert len(rows) == len({r["id"] for r in rows}) == 400
    assert {(r["endpoint"], r["status_code"]) for r in rows} == {("/v1/assistants", 200)}


def test_a_blank_file_migrates_to_the_call_log_schema(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "blank.sqlite3")
    conn = store.conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = [row[1] for row in conn.execute("PRAGMA table_info(ai_gateway_logs)")]
    assert columns == [
        "id",
        "created_at",
        "endpoint",
        "method",
        "status_code",
        "latency_ms",
        "request_payload",
        "response_payload",
        "error_message",
        "user_id",
        "agent_id",
        "path",
        "request_id",
        "call_id",
        "attempt",
        "route",
        "cache_status",
        "thread_id",
        "run_id",
        "assistant_id",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "source",
        "synced_at",
    ]
    indexes = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ai_gateway_logs'"
            " AND sql IS NOT NULL"
        )
    }
    assert indexes == {
        "ai_gateway_logs_created_at",  # every window read; each index costs every write
        "ai_gateway_logs_pending",
    }
    store.close()


def test_an_older_file_is_upgraded_on_open_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = connect(path)
    assert migrate(conn, MIGRATIONS[:1]) == 1
    conn.close()
    old = sqlite3.connect(path)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    old.close()

    store = SQLiteRepository(path)
    store.write(records(3))
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.pending_count() == 3
    store.close()


def test_a_failing_migration_leaves_the_file_at_its_previous_version(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.sqlite3")
    migrate(conn)
    broken = [*MIGRATIONS, "CREATE TABLE fine (x);\nCREATE TABLE broken (;"]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'fine'").fetchone()[0] == 0


def test_each_record_is_committed_before_the_call_returns(
    sandbox: Sandbox, isolated_env: Path
) -> None:
    env = {
        **os.environ,
        "AI_GATEWAY_URL": sandbox.url,
        "GATEWAY_API_KEY": "gk-test",
        "OPENAI_API_KEY": "sk-test-0000000000000000abcd",
        "AIGW_CACHE_TTL": "0",
    }
    # The process dies by os._exit after three calls: no close(), no flush, nothing at exit.
    script = CALLS.replace("for _ in range(50):", "for _ in range(3):").replace(
        "app.close()", "import os; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    assert len(local_rows(isolated_env)) == 3
