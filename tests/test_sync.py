"""Sync from the local outbox to the real Postgres: after each command, and `aigw logs sync`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aigw.sandbox import Sandbox
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.cli import Cli
from tests.helpers.rows import local_rows, records, remote_count, remote_rows

BAD_PORT_URL = "postgresql://postgres@127.0.0.1:1/nothing"


def test_rows_of_each_command_reach_postgres_when_it_ends(
    cli: Cli,
    gateway_env: Sandbox,
    remote_env: str,
    isolated_env: Path,
) -> None:
    for _ in range(3):
        result = cli("assistants", "create", "--model", "gpt-4o")
        assert result.exit_code == 0 and "pending" not in result.stderr
    assert cli("assistants", "get", "asst_missing").exit_code == 1

    local = local_rows(isolated_env)
    remote = remote_rows(remote_env)
    assert len(local) == len(remote) == 4
    assert local_pending(isolated_env) == 0
    assert [str(r["id"]) for r in remote] == [r["id"] for r in local]
    assert [(r["endpoint"], r["status_code"]) for r in remote] == [
        (r["endpoint"], r["status_code"]) for r in local
    ]
    assert [r["latency_ms"] for r in remote] == [round(r["latency_ms"]) for r in local]


def test_logs_sync_sends_the_same_n_rows_and_summarises_in_json(
    cli: Cli,
    gateway_env: Sandbox,
    remote_env: str,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIGW_SYNC_BUDGET", "0")  # commands leave their rows pending
    for _ in range(5):
        assert cli("assistants", "list", "--no-cache").exit_code == 0
    assert remote_count(remote_env) == 0

    result = cli("logs", "sync", "--batch-size", "2", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["synced"], summary["pending"]) == (5, 0)
    assert summary["remote"].startswith("Postgres at postgres@127.0.0.1:5432/")
    assert remote_count(remote_env) == 5
    again = json.loads(cli("logs", "sync", "--json").stdout)
    assert (again["synced"], remote_count(remote_env)) == (0, 5)


def test_an_unreachable_postgres_loses_no_row_and_all_sync_later(
    cli: Cli,
    gateway_env: Sandbox,
    migrated_db: str,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", BAD_PORT_URL)
    for done in range(1, 5):
        result = cli("assistants", "list", "--no-cache")
        assert result.exit_code == 0
        assert result.stderr.count("pending sync") == 1
        assert (
            f"{done} log rows pending sync to Postgres at postgres@127.0.0.1:1/nothing"
            in result.stderr
        )

    failed = cli("logs", "sync")
    assert failed.exit_code == 8
    assert "4 rows are still pending" in failed.stderr

    monkeypatch.setenv("DATABASE_URL", migrated_db)
    assert cli("logs", "sync").exit_code == 0
    assert remote_count(migrated_db) == 4
    assert local_pending(isolated_env) == 0


def test_a_sync_killed_midway_and_run_again_leaves_no_duplicate_and_no_gap(
    migrated_db: str,
    isolated_env: Path,
) -> None:
    total = 30_000
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    batch = records(total)
    store.write(batch)
    env = {**os.environ, "DATABASE_URL": migrated_db}
    command = [sys.executable, "-m", "aigw", "logs", "sync", "--batch-size", "100", "--json"]

    sync = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while remote_count(migrated_db) < total // 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    sync.send_signal(signal.SIGKILL)
    sync.wait()
    partial = remote_count(migrated_db)
    assert 0 < partial < total, "the sync should have been cut off midway"
    assert store.pending_count() > 0

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert remote_count(migrated_db) == total  # remote_count also checks the ids are distinct
    assert {str(r["id"]) for r in remote_rows(migrated_db)} == {r.id for r in batch}
    assert store.pending_count() == 0
    store.close()


def test_logs_sync_without_a_remote_is_a_configuration_error(cli: Cli) -> None:
    result = cli("logs", "sync")
    assert result.exit_code == 3
    assert "no remote store is configured" in result.stderr


def local_pending(home: Path) -> int:
    store = SQLiteRepository(home / "aigw.sqlite3")
    try:
        return store.pending_count()
    finally:
        store.close()
