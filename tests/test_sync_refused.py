"""One bad row never blocks the rest: a row the remote database refuses is set aside (kept
locally, listed with the reason) and the rows after it still go; a row the local store cannot
read is skipped by reads, set aside by sync and reported once. On the real Postgres."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import psycopg
import pytest

from aigw.services.sync import sync_logs
from aigw.storage.migrations import shipped_sql_dir
from aigw.storage.postgres import PostgresRepository
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.cli import Cli
from tests.helpers.migrations import apply_all
from tests.helpers.rows import records, remote_rows

HUGE = 3_000_000_000  # a token count past INTEGER


@pytest.fixture
def db_before_0004(fresh_db: str, tmp_path: Path) -> str:
    """The schema as released up to 0003: token counts are INTEGER there."""
    folder = tmp_path / "sql-0003"
    folder.mkdir()
    for path in sorted(shipped_sql_dir().glob("000[123]_*.sql")):
        shutil.copy(path, folder)
    apply_all(fresh_db, folder)
    return fresh_db


def store_with(home: Path, rows) -> SQLiteRepository:
    store = SQLiteRepository(home / "aigw.sqlite3")
    store.write(rows)
    return store


def test_a_refused_row_is_set_aside_and_the_rows_after_it_still_go(
    db_before_0004: str, isolated_env: Path
) -> None:
    rows = records(5)
    rows[2] = dataclasses.replace(rows[2], prompt_tokens=HUGE, total_tokens=HUGE)
    local = store_with(isolated_env, rows)
    remote = PostgresRepository(db_before_0004)
    report = sync_logs(local, remote, batch_size=4)
    later = records(2, start=rows[-1].created_at)
    local.write(later)
    again = sync_logs(local, remote)
    remote.close()

    assert report.error is None and (report.synced, report.set_aside, report.pending) == (4, 1, 0)
    assert again.error is None and again.synced == 2
    sent = {str(r["id"]) for r in remote_rows(db_before_0004)}
    assert sent == {r.id for r in rows if r is not rows[2]} | {r.id for r in later}
    (aside,) = local.set_aside_rows()
    assert aside.id == rows[2].id and "out of range" in aside.reason
    assert local.get(rows[2].id) is not None  # kept locally
    local.close()


def test_logs_sync_and_doctor_show_the_row_and_reason_then_send_it_once_migrated(
    cli: Cli, db_before_0004: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_before_0004)
    rows = records(3)
    rows[1] = dataclasses.replace(rows[1], completion_tokens=HUGE)
    store_with(isolated_env, rows).close()

    result = cli("logs", "sync", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["synced"], summary["set_aside"], summary["pending"]) == (2, 1, 0)
    assert [r["id"] for r in summary["set_aside_rows"]] == [rows[1].id]
    assert f"row {rows[1].id}: Postgres refused" in result.stderr
    assert "out of range" in result.stderr

    doctor = json.loads(cli("doctor", "--json").stdout)
    (outbox,) = [c for c in doctor["checks"] if c["name"] == "outbox"]
    assert outbox["status"] == "warn" and rows[1].id in outbox["detail"]
    assert "out of range" in outbox["detail"]

    assert apply_all(db_before_0004)[0] == "0004_token_counts_bigint"
    fixed = json.loads(cli("logs", "sync", "--json").stdout)
    assert (fixed["synced"], fixed["set_aside_rows"]) == (1, [])
    assert len(remote_rows(db_before_0004)) == 3


def test_token_counts_past_integer_reach_the_migrated_schema(
    remote_db_url: str, isolated_env: Path
) -> None:
    rows = [dataclasses.replace(records(1)[0], prompt_tokens=HUGE, total_tokens=HUGE + 5)]
    local = store_with(isolated_env, rows)
    remote = PostgresRepository(remote_db_url)
    report = sync_logs(local, remote)
    remote.close()
    local.close()
    assert (report.synced, report.set_aside) == (1, 0)
    (row,) = remote_rows(remote_db_url)
    assert (row["prompt_tokens"], row["total_tokens"]) == (HUGE, HUGE + 5)


@pytest.fixture
def remote_db_url(fresh_db: str) -> str:
    apply_all(fresh_db)
    return fresh_db


def test_a_constraint_the_database_adds_refuses_only_its_rows(
    remote_db_url: str, isolated_env: Path
) -> None:
    with psycopg.connect(remote_db_url, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE ai_gateway_logs ADD CONSTRAINT no_teapots CHECK (status_code <> 418)"
        )
    rows = records(2500)
    bad = {7, 1500, 2499}
    rows = [dataclasses.replace(r, status_code=418) if i in bad else r for i, r in enumerate(rows)]
    local = store_with(isolated_env, rows)
    remote = PostgresRepository(remote_db_url)
    report = sync_logs(local, remote, batch_size=1000)
    remote.close()
    assert (report.synced, report.set_aside, report.pending) == (2497, 3, 0)
    assert sorted(r.id for r in local.set_aside_rows()) == sorted(rows[i].id for i in bad)
    assert all("no_teapots" in r.reason for r in local.set_aside_rows())
    assert len(remote_rows(remote_db_url)) == 2497
    local.close()


def corrupt(home: Path, **columns: object) -> None:
    """Write a row straight into the local file, as another program (or a bug) might."""
    names = ["id", "created_at", "endpoint", "method", *columns]
    values = ["bad-row", 1_767_225_600.5, "/v1/assistants", "GET", *columns.values()]
    with sqlite3.connect(home / "aigw.sqlite3") as conn:
        if "created_at" in columns:
            names.pop(1), values.pop(1)
        marks = ", ".join("?" for _ in names)
        conn.execute(f"INSERT INTO ai_gateway_logs ({', '.join(names)}) VALUES ({marks})", values)


@pytest.mark.parametrize(
    "columns",
    [{"created_at": "yesterday"}, {"request_payload": "{not json"}, {"prompt_tokens": "many"}],
    ids=["created_at", "payload", "tokens"],
)
def test_a_malformed_local_row_is_skipped_by_reads_and_reported_once(
    cli: Cli, isolated_env: Path, columns: dict
) -> None:
    store_with(isolated_env, records(2)).close()
    corrupt(isolated_env, **columns)
    store_with(isolated_env, records(1, start=records(3)[-1].created_at)).close()

    listed = cli("logs", "list", "--local", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 3
    assert listed.stderr.count("bad-row") == 1 and "malformed" in listed.stderr
    tail = cli("logs", "tail", "--local", "--json")
    assert tail.exit_code == 0 and len(tail.stdout.splitlines()) == 3
    metrics = cli("metrics", "--local", "--since", "3650d", "--json")
    assert metrics.exit_code == 0, metrics.stderr


def test_sync_sets_a_malformed_row_aside_and_sends_the_rest(
    remote_db_url: str, isolated_env: Path
) -> None:
    store_with(isolated_env, records(2)).close()
    corrupt(isolated_env, created_at="not a time")
    later = records(2, start=records(3)[-1].created_at)
    local = store_with(isolated_env, later)
    remote = PostgresRepository(remote_db_url)
    report = sync_logs(local, remote)
    remote.close()
    assert (report.error, report.synced, report.set_aside, report.pending) == (None, 4, 1, 0)
    (aside,) = local.set_aside_rows()
    assert aside.id == "bad-row" and "created_at is not a time" in aside.reason
    local.close()


def test_logs_sync_and_doctor_list_the_mirror_rows_the_database_refused(
    cli: Cli, migrated_db: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    unknown = "00000000-0000-4000-8000-00000000dead"  # no such agent or user
    store.queue_mirror(
        "conversation", {"agent_id": unknown, "user_id": unknown, "openai_thread_id": "thread_x"}
    )
    store.queue_mirror(
        "agent",
        {"openai_assistant_id": "asst_ok", "name": "kept", "instructions": None, "model": "m"},
    )
    store.close()

    result = cli("logs", "sync", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["mirror_synced"] == 1  # the row after the refused one still went
    (aside,) = summary["mirror_set_aside_rows"]
    assert (aside["kind"], aside["object"]) == ("conversation", "thread_x")
    assert "foreign key" in aside["reason"]
    assert "conversation of thread_x: " in result.stderr and "foreign key" in result.stderr

    doctor = json.loads(cli("doctor", "--json").stdout)
    (outbox,) = [c for c in doctor["checks"] if c["name"] == "outbox"]
    assert outbox["status"] == "warn" and "conversation of thread_x" in outbox["detail"]
