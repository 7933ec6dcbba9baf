"""The local SQLite outbox: concurrent processes, its migrations, durability of each row."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aigw.errors import ExitCode
from aigw.sandbox import Sandbox
from aigw.settings import Settings
from aigw.storage import open_repository
from aigw.storage.base import COLUMNS, LogFilter
from aigw.storage.sqlite import SQLiteRepository, connect, migrate, to_row
from aigw.storage.sqlite_migrations import MIGRATIONS
from tests.helpers.cli import Cli, make_assistant, make_thread, ok_json
from tests.helpers.rows import local_rows, records

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
    # seq (the commit order), then exactly the columns the insert writes (storage/base.py).
    assert columns == ["seq", *COLUMNS]
    indexes = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ai_gateway_logs'"
            " AND sql IS NOT NULL"
        )
    }
    # Every window read needs it; each index costs every write (no index on id: UUIDv7).
    assert indexes == {"ai_gateway_logs_created_at"}
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


def test_the_cursor_upgrade_keeps_pending_what_version_2_had_not_synced(tmp_path: Path) -> None:
    # Version 2 marked rows one by one (synced_at); version 3 keeps one cursor. Rows 0-3 were
    # synced, 4 was not, 5 was: everything from row 4 on must still go (5 again is a no-op
    # upsert remotely), and nothing before it.
    path = tmp_path / "v2.sqlite3"
    conn = connect(path)
    migrate(conn, MIGRATIONS[:2])
    rows = records(6)
    columns = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    for i, record in enumerate(rows):
        conn.execute(
            f"INSERT INTO ai_gateway_logs ({columns}, synced_at) VALUES ({marks}, ?)",
            (*to_row(record), None if i == 4 else 1.0),
        )
    conn.close()

    store = SQLiteRepository(path)
    assert [r.id for r in store.pending(10).records] == [r.id for r in rows[4:]]
    assert [r.id for r in store.records(LogFilter(limit=None))] == [r.id for r in rows[::-1]]
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
    # Its rows are in its journal; the next aigw to open the store takes them in, once.
    script = CALLS.replace("for _ in range(50):", "for _ in range(3):").replace(
        "app.close()", "import os; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    [journal] = (isolated_env / "journal").iterdir()
    assert journal.read_bytes().count(b"\n") == 3
    for _ in range(2):
        open_repository(Settings(home=isolated_env)).close()
    assert len(local_rows(isolated_env)) == 3
    assert list((isolated_env / "journal").iterdir()) == []


AIGW = (sys.executable, "-m", "aigw")
SLOW = ("-m", "sandbox_run_ms=60000")  # a run that will not finish during the test


def test_sigterm_ends_a_command_with_143_after_saving_its_rows(
    cli: Cli, gateway_env: Sandbox, isolated_env: Path, tmp_path: Path
) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "slow")
    before = len(local_rows(isolated_env))
    waiting = subprocess.Popen(
        [*AIGW, "runs", "create", thread_id, "--assistant", assistant, *SLOW, "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ok_json(cli, "runs", "list", thread_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # into the wait for the stream's next event
    waiting.send_signal(signal.SIGTERM)
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == ExitCode.TERMINATED, err
    assert "terminated" in err and "Traceback" not in err
    rows = local_rows(isolated_env)[before:]
    assert ("POST", "/v1/threads/{thread_id}/runs", 200) in {
        (r["method"], r["endpoint"], r["status_code"]) for r in rows
    }
