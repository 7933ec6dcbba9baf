"""The local SQLite store: concurrent processes, its migrations, durability of each row."""

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

from aigw.common.log_record import COLUMNS
from aigw.errors import ExitCode
from aigw.sandbox import Sandbox
from aigw.storage.base import LogFilter, RowsNotWritten
from aigw.storage.call_log import CallLog
from aigw.storage.sqlite import SQLiteRepository, connect, migrate, to_row
from aigw.storage.sqlite_migrations import MIGRATIONS
from tests.helpers.cli import Cli, make_assistant, make_thread, ok_json
from tests.helpers.processes import signal_a_waiting_run
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
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "journal_marks" not in tables  # rows go straight in: nothing marks journals
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
    # The process says when each call has returned, then waits to be killed: no close(), no
    # flush, nothing at exit. What it logged must be in the store already.
    call = "    app.openai.beta.assistants.list(limit=1)\n"
    script = CALLS.replace(
        f"for _ in range(50):\n{call}", f"for n in range(3):\n{call}    print(n, flush=True)\n"
    ).replace("app.close()", "import sys; sys.stdin.read()")  # until killed
    caller = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert caller.stdout is not None
        assert [caller.stdout.readline() for _ in range(3)] == ["0\n", "1\n", "2\n"]
        caller.send_signal(signal.SIGKILL)
        caller.wait(timeout=30)
    finally:
        caller.kill()
    rows = local_rows(isolated_env)
    assert len(rows) == 3 and {r["endpoint"] for r in rows} == {"/v1/assistants"}


def test_a_row_sqlite_refuses_does_not_hold_back_the_others(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    good, bad, later = records(3)
    bad.total_tokens = 2**63  # past SQLite's integers (the logging layer never makes one)
    with pytest.raises(RowsNotWritten) as refused:
        store.write([good, bad, later])
    assert refused.value.records == [bad]
    with pytest.raises(RowsNotWritten):
        store.write([bad])
    assert [r.id for r in store.records(LogFilter())] == [later.id, good.id]
    store.close()


def test_the_call_log_keeps_a_refused_row_and_stores_the_next(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    log = CallLog(lambda: store)
    good, bad, later = records(3)
    bad.total_tokens = 2**63
    for record in (good, bad, later):
        log(record)
    assert log.unwritten == [bad] and "OverflowError" in (log.problem or "")
    assert log.close() == 1
    assert [r.id for r in store.records(LogFilter())] == [later.id, good.id]
    store.close()


def test_an_error_text_with_a_lone_surrogate_is_stored(tmp_path: Path) -> None:
    from aigw.gateway.http import Request, Response
    from aigw.gateway.transports.logging import LoggingTransport

    store = SQLiteRepository(tmp_path / "store.sqlite3")
    log = CallLog(lambda: store)
    layer = LoggingTransport(None, log, route="gateway")  # type: ignore[arg-type]
    body = b'{"error": {"message": "bad input \\ud800 here"}}'  # JSON's escape: a lone surrogate
    request = Request("POST", "http://gw.example/v1/threads", content=b"{}")
    response = Response(400, content=body, request=request)
    for _ in range(2):
        layer._emit(request, response, body, None, time.time_ns(), 1.0, None)
    assert log.unwritten == []
    rows = store.records(LogFilter(limit=None))
    assert [r.error_message for r in rows] == ["bad input \ufffd here"] * 2
    store.close()


def test_a_row_that_cannot_be_built_is_kept_with_what_is_certain(tmp_path: Path) -> None:
    from aigw.gateway.http import Request, Response
    from aigw.gateway.transports.logging import LoggingTransport

    store = SQLiteRepository(tmp_path / "store.sqlite3")
    layer = LoggingTransport(None, CallLog(lambda: store), route="gateway")  # type: ignore[arg-type]

    def broken(*args: object) -> None:
        raise RuntimeError("surprise")

    layer._read = broken  # type: ignore[method-assign]
    request = Request("GET", "http://gw.example/v1/threads/thread_9/runs/run_1")
    started = time.time_ns()
    layer._emit(request, Response(200, request=request), b"{}", None, started, 2.5, None)
    [row] = store.records(LogFilter(limit=None))
    assert (row.endpoint, row.thread_id, row.run_id) == (
        "/v1/threads/{thread_id}/runs/{run_id}",
        "thread_9",
        "run_1",
    )
    assert (row.status_code, row.latency_ms, row.route) == (200, 2.5, "gateway")
    assert row.created_at.timestamp() == pytest.approx(started / 1e9)
    assert row.error_message == "aigw could not build this log row: RuntimeError"
    store.close()


def test_sigterm_ends_a_waiting_command_with_143(
    cli: Cli, gateway_env: Sandbox, isolated_env: Path, tmp_path: Path
) -> None:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "slow")
    ended = signal_a_waiting_run(
        thread_id, assistant, signal.SIGTERM, lambda: bool(ok_json(cli, "runs", "list", thread_id))
    )
    assert ended.exit_code == ExitCode.TERMINATED, ended.stderr
    assert "terminated" in ended.stderr and "Traceback" not in ended.stderr
