"""Reading and pruning the log lose nothing: `logs tail -f` follows the local store's commit
order (every row, however many), and `logs prune` keeps rows not yet in the remote store."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aigw.common.log_record import LogRecord
from aigw.services.logs import follow
from aigw.services.sync import sync_logs
from aigw.storage.base import LogFilter
from aigw.storage.postgres import PostgresRepository
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.cli import Cli
from tests.helpers.rows import records, remote_rows


def started(seconds_ago: float, path: str) -> LogRecord:
    return LogRecord(
        endpoint="/v1/threads/{thread_id}/runs",
        method="POST",
        created_at=datetime.now(UTC) - timedelta(seconds=seconds_ago),
        status_code=200,
        path=path,
    )


def test_following_shows_a_long_call_that_commits_after_a_short_one(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "f.sqlite3")
    store.write([started(60, "/v1/old")])
    long_call = started(30, "/v1/long")  # started first, answered last
    short_call = started(1, "/v1/short")
    commits = [[short_call], [long_call]]

    def sleep(_: float) -> None:
        store.write(commits.pop(0) if commits else [])

    batches = follow(store, LogFilter(limit=5), sleep=sleep)
    shown = [[r.path for r in next(batches)] for _ in range(3)]
    assert shown == [["/v1/old"], ["/v1/short"], ["/v1/long"]]
    store.close()


@pytest.mark.postgres
def test_following_postgres_shows_a_long_call_that_commits_after_a_short_one_once(
    migrated_db: str,
) -> None:
    remote = PostgresRepository(migrated_db)
    slow_sync = PostgresRepository(migrated_db)  # another process, its transaction held open
    remote.write([started(60, "/v1/old")])
    long_call = started(600, "/v1/long")  # started ten minutes ago: past any lag window
    short_call = started(1, "/v1/short")
    held = slow_sync.conn.transaction()
    steps = ["open", "commit"]

    def sleep(_: float) -> None:
        step = steps.pop(0) if steps else "wait"
        if step == "open":
            held.__enter__()
            slow_sync.write([long_call])  # inserted, not committed
            remote.write([short_call])  # committed at once
        elif step == "commit":
            held.__exit__(None, None, None)
        else:  # other sessions of the server may hold the horizon back a moment
            time.sleep(0.05)

    batches = follow(remote, LogFilter(limit=5), sleep=sleep)
    assert [r.path for r in next(batches)] == ["/v1/old"]
    assert next(batches) == []  # the short call waits for the transaction begun before it
    shown: list[str] = []
    deadline = time.monotonic() + 20
    while len(shown) < 2 and time.monotonic() < deadline:
        shown += [r.path for r in next(batches)]
    assert shown == ["/v1/long", "/v1/short"]
    assert next(batches) == []  # each once
    remote.close()
    slow_sync.close()


@pytest.mark.postgres
def test_following_postgres_sleeps_between_polls_while_other_clients_commit(
    migrated_db: str,
) -> None:
    import psycopg

    remote = PostgresRepository(migrated_db)
    remote.write([started(5, "/v1/old")])
    stop = threading.Event()
    committed = threading.Event()

    def busy_client() -> None:  # unrelated commits: the horizon moves between any two reads
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("SELECT pg_current_xact_id()")
                committed.set()

    reads_since_sleep = [0]
    read = remote.committed_after

    def counted(*args: object) -> object:
        reads_since_sleep[0] += 1
        if reads_since_sleep[0] > 20:
            raise AssertionError("the follower read again and again without sleeping")
        return read(*args)  # type: ignore[arg-type]

    remote.committed_after = counted  # type: ignore[method-assign]
    reads_per_poll: list[int] = []

    def sleep(_: float) -> None:
        reads_per_poll.append(reads_since_sleep[0])
        reads_since_sleep[0] = 0

    busy = threading.Thread(target=busy_client, daemon=True)
    busy.start()
    try:
        assert committed.wait(10)
        batches = follow(remote, LogFilter(limit=5), sleep=sleep)
        assert [r.path for r in next(batches)] == ["/v1/old"]
        for _ in range(5):
            assert next(batches) == []
        assert reads_per_poll[1:] == [1, 1, 1, 1]  # one short page a poll, then a sleep
    finally:
        stop.set()
        busy.join(10)
        remote.close()


def test_following_shows_every_row_of_a_poll_past_a_thousand(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "f.sqlite3")
    arriving = records(2500, start=datetime.now(UTC))
    polls = [arriving]

    def sleep(_: float) -> None:
        store.write(polls.pop(0) if polls else [])

    batches = follow(store, LogFilter(limit=5), sleep=sleep)
    assert next(batches) == []
    shown: list[str] = []
    while len(shown) < 2500:
        batch = next(batches)
        assert batch, "a poll ended before every new row was shown"
        shown += [r.id for r in batch]
    assert shown == [r.id for r in arriving]
    store.close()


def lines_of(proc: subprocess.Popen) -> queue.Queue[str]:
    """The process's stdout lines, read on a helper thread (a test waits with a deadline)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_tail_follow_prints_a_row_committed_late_with_an_earlier_time(isolated_env: Path) -> None:
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    store.write([started(120, "/v1/first")])
    env = {**os.environ, "AIGW_HOME": str(isolated_env)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigw", "logs", "tail", "-f", "--json", "--interval", "100ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines = lines_of(proc)
    try:
        assert json.loads(lines.get(timeout=30))["path"] == "/v1/first"
        store.write([started(1, "/v1/short")])
        assert json.loads(lines.get(timeout=30))["path"] == "/v1/short"
        store.write([started(60, "/v1/long")])  # a long call: started earlier, committed now
        assert json.loads(lines.get(timeout=30))["path"] == "/v1/long"
    finally:
        proc.kill()
        proc.wait()
        store.close()


# -- prune keeps what the remote store does not have -------------------------------------


@pytest.fixture
def half_synced(isolated_env: Path, migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Old local rows: 3 already in the remote store, 2 not yet."""
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    monkeypatch.setenv("AIGW_SYNC_BUDGET", "0")  # commands leave rows pending
    old = datetime.now(UTC) - timedelta(days=40)
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    synced = records(3, start=old)
    store.write(synced)
    remote = PostgresRepository(migrated_db)
    assert sync_logs(store, remote).synced == 3
    remote.close()
    unsynced = records(2, start=old + timedelta(seconds=5))
    store.write(unsynced)
    store.close()
    return {"synced": synced, "unsynced": unsynced, "db": migrated_db}


def local_ids(cli: Cli) -> set[str]:
    return {r["id"] for r in json.loads(cli("logs", "list", "--local", "--json").stdout)}


def test_prune_local_keeps_unsynced_rows_and_says_how_many(cli: Cli, half_synced: dict) -> None:
    dry = json.loads(
        cli("logs", "prune", "--local", "--older-than", "30d", "--dry-run", "--json").stdout
    )
    assert (dry["local"], dry["kept_unsynced"]) == (3, 2)
    result = cli("logs", "prune", "--local", "--older-than", "30d", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "deleted 3 local rows" in result.stderr
    assert "kept 2 local rows not yet in the remote store" in result.stderr
    assert "--delete-unsynced 2" in result.stderr
    assert local_ids(cli) == {r.id for r in half_synced["unsynced"]}
    assert cli("logs", "sync").exit_code == 0  # they still reach the remote store
    assert len(remote_rows(half_synced["db"])) == 5


def test_prune_deletes_unsynced_rows_only_when_the_flag_names_their_count(
    cli: Cli, half_synced: dict
) -> None:
    wrong = cli(
        "logs", "prune", "--local", "--older-than", "30d", "--yes", "--delete-unsynced", "5"
    )
    assert wrong.exit_code == 2
    assert "2 rows older than the cutoff have not reached the remote store" in wrong.stderr
    assert len(local_ids(cli)) == 5
    done = cli("logs", "prune", "--local", "--older-than", "30d", "--yes", "--delete-unsynced", "2")
    assert done.exit_code == 0, done.stderr
    assert "deleted 5 local rows" in done.stderr and local_ids(cli) == set()


def test_without_a_remote_store_prune_deletes_by_age_alone(cli: Cli, isolated_env: Path) -> None:
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    store.write(records(4, start=datetime.now(UTC) - timedelta(days=40)))
    store.close()
    result = cli("logs", "prune", "--older-than", "30d", "--yes", "--json")
    assert (json.loads(result.stdout)["local"], json.loads(result.stdout)["kept_unsynced"]) == (
        4,
        0,
    )
