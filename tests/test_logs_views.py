"""`aigw logs list/show/tail/prune` on a real SQLite file and the real Postgres."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aigw.common.log_record import LogRecord
from aigw.services.logs import follow
from aigw.storage.base import LogFilter
from aigw.storage.postgres import PostgresRepository
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.cli import Cli
from tests.helpers.metrics import load_postgres


def a_row(minutes_ago: float, status: int | None = 200, **extra: object) -> LogRecord:
    values: dict[str, object] = {
        "endpoint": "/v1/threads/{thread_id}/runs",
        "method": "POST",
        "created_at": datetime.now(UTC) - timedelta(minutes=minutes_ago),
        "status_code": status,
        "latency_ms": 250.0,
        "path": "/v1/threads/thread_1/runs",
        "cache_status": "miss",
    }
    values.update(extra)
    return LogRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def local_rows(isolated_env: Path) -> list[LogRecord]:
    records = [
        a_row(1, 200, cache_status="hit"),
        a_row(2, 429),
        a_row(3, 503, method="GET", endpoint="/v1/assistants"),
        a_row(4, None, error_message="connection refused"),
        a_row(60 * 24 * 40, 200),  # 40 days old
        a_row(5, 404, request_payload={"content": "hello", "authorization": "[REDACTED]"}),
    ]
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    store.write(records)
    store.close()
    return records


def ids(result_stdout: str) -> list[str]:
    return [row["id"] for row in json.loads(result_stdout)]


def test_list_shows_rows_newest_first_with_filters(cli: Cli, local_rows: list[LogRecord]) -> None:
    r = local_rows
    assert ids(cli("logs", "list", "--json").stdout) == [
        x.id for x in (r[0], r[1], r[2], r[3], r[5], r[4])
    ]
    assert ids(cli("logs", "list", "--status", "5xx", "--json").stdout) == [r[2].id]
    assert ids(cli("logs", "list", "--status", "429", "--json").stdout) == [r[1].id]
    assert ids(cli("logs", "list", "--status", "4xx", "--json").stdout) == [r[1].id, r[5].id]
    assert ids(cli("logs", "list", "--method", "get", "--json").stdout) == [r[2].id]
    assert ids(cli("logs", "list", "--since", "2m30s", "--json").stdout) == [r[0].id, r[1].id]
    assert ids(cli("logs", "list", "--limit", "1", "--json").stdout) == [r[0].id]
    raw = cli("logs", "list", "--endpoint", "/v1/threads/thread_zz/runs", "--since", "1d", "--json")
    assert ids(raw.stdout) == [r[0].id, r[1].id, r[3].id, r[5].id]  # the raw path is templated


def test_json_rows_keep_the_column_order_of_the_log_table(
    cli: Cli, local_rows: list[LogRecord]
) -> None:
    # Scripts diff and cut this output: a row's keys come in one order, the table's, as before.
    keys = list(json.loads(cli("logs", "list", "--limit", "1", "--json").stdout)[0])
    assert keys[:3] == ["endpoint", "method", "id"]
    assert keys.index("cache_status") < keys.index("thread_id") < keys.index("total_tokens")
    assert keys[-1] == "source"


def test_list_prints_a_table_with_status_latency_and_cache(
    cli: Cli, local_rows: list[LogRecord]
) -> None:
    out = cli("logs", "list", "--since", "1h").stdout
    header = next(line for line in out.splitlines() if line.strip())
    for column in ("time (UTC)", "method", "endpoint", "status", "latency", "cache"):
        assert column in header
    assert "network" in out and "503" in out and "250ms" in out and "hit" in out


def test_a_bad_status_filter_is_a_usage_error(cli: Cli) -> None:
    result = cli("logs", "list", "--status", "6xx")
    assert result.exit_code == 2
    assert "--status" in result.stderr


def test_show_prints_every_column_and_the_payload_pretty(
    cli: Cli, local_rows: list[LogRecord]
) -> None:
    target = local_rows[5]
    out = cli("logs", "show", target.id).stdout
    assert "request_payload" in out and '"content": "hello"' in out
    assert "/v1/threads/thread_1/runs" in out and "404" in out
    data = json.loads(cli("logs", "show", target.id, "--json").stdout)
    assert data["request_payload"] == {"content": "hello", "authorization": "[REDACTED]"}
    missing = cli("logs", "show", "no-such-id")
    assert missing.exit_code == 1 and "no log row 'no-such-id'" in missing.stderr


def test_tail_shows_the_last_rows_oldest_first(cli: Cli, local_rows: list[LogRecord]) -> None:
    out = cli("logs", "tail", "-n", "3", "--json").stdout
    assert [json.loads(line)["id"] for line in out.splitlines()] == [
        local_rows[2].id, local_rows[1].id, local_rows[0].id,
    ]  # fmt: skip


def test_following_yields_each_new_row_once_even_when_rows_share_an_instant(
    tmp_path: Path,
) -> None:
    store = SQLiteRepository(tmp_path / "f.sqlite3")
    first = a_row(1)
    store.write([first])
    instant = datetime.now(UTC)
    arriving = [[a_row(0, created_at=instant), a_row(0, created_at=instant)], [],
                [a_row(0, created_at=instant)], [a_row(0, 201)]]  # fmt: skip

    def sleep(_: float) -> None:
        store.write(arriving.pop(0) if arriving else [])

    batches = follow(store, LogFilter(limit=5), sleep=sleep)
    seen = [[r.id for r in next(batches)] for _ in range(5)]
    assert seen[0] == [first.id]
    assert len(seen[1]) == 2 and seen[2] == [] and len(seen[3]) == 1 and len(seen[4]) == 1
    everything = [i for batch in seen for i in batch]
    assert len(everything) == len(set(everything)) == 5


def test_tail_follow_prints_rows_as_they_arrive(isolated_env: Path, tmp_path: Path) -> None:
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    store.write([a_row(1)])
    env = {**os.environ, "AIGW_HOME": str(isolated_env)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigw", "logs", "tail", "-f", "--json", "--interval", "100ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())  # the existing row
        fresh = a_row(0, 201)
        store.write([fresh])
        assert json.loads(proc.stdout.readline())["id"] == fresh.id
    finally:
        proc.kill()
        proc.wait()
        store.close()


def test_prune_dry_run_counts_and_deletes_nothing(cli: Cli, local_rows: list[LogRecord]) -> None:
    result = cli("logs", "prune", "--older-than", "30d", "--dry-run", "--json")
    assert json.loads(result.stdout)["local"] == 1
    assert len(json.loads(cli("logs", "list", "--json").stdout)) == 6


def test_prune_asks_first_and_refuses_without_a_terminal(
    cli: Cli, local_rows: list[LogRecord]
) -> None:
    refused = cli("logs", "prune", "--older-than", "30d")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    done = cli("logs", "prune", "--older-than", "30d", "--yes")
    assert done.exit_code == 0 and "deleted 1 local rows" in done.stderr
    assert local_rows[4].id not in ids(cli("logs", "list", "--json").stdout)


def test_a_bad_retention_is_a_usage_error(cli: Cli) -> None:
    result = cli("logs", "prune", "--older-than", "a month", "--yes")
    assert result.exit_code == 2 and "--older-than" in result.stderr


@pytest.mark.postgres
def test_list_reads_and_prune_cleans_the_remote_store_too(
    cli: Cli, local_rows: list[LogRecord], migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote_rows = [a_row(10, 500), a_row(60 * 24 * 31, 200), a_row(60 * 24 * 45, 200)]
    load_postgres(migrated_db, remote_rows)
    monkeypatch.setenv("SUPABASE_DB_URL", migrated_db)
    # the first command reads before it flushes the local outbox at its end
    assert ids(cli("logs", "list", "--json").stdout) == [r.id for r in remote_rows]
    assert len(ids(cli("logs", "list", "--local", "--json").stdout)) == 6
    # every command flushes the local outbox, so the 40-day-old local row is remote too now
    dry = json.loads(cli("logs", "prune", "--older-than", "30d", "--dry-run", "--json").stdout)
    assert (dry["local"], dry["remote"], dry["remote_kind"]) == (1, 3, "postgres")
    cli("logs", "prune", "--older-than", "30d", "--yes")
    remote = PostgresRepository(migrated_db)
    kept = remote.records(LogFilter(limit=None))
    remote.close()
    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert remote_rows[0].id in [r.id for r in kept] and len(kept) == 6
    assert all(r.created_at > cutoff for r in kept)


@pytest.mark.postgres
def test_show_takes_a_unique_prefix_of_a_remote_rows_id(
    cli: Cli, isolated_env: Path, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote_rows = [
        a_row(1, id="0b7a5f0e-8c1e-7d1c-9a55-00000000000a"),
        a_row(2, id="0b7a5f0e-8c1e-7d1c-9a55-00000000000b"),
        a_row(3, id="1c7a5f0e-8c1e-7d1c-9a55-00000000000c"),
    ]
    load_postgres(migrated_db, remote_rows)
    monkeypatch.setenv("SUPABASE_DB_URL", migrated_db)
    shown = cli("logs", "show", "1C7A5", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == remote_rows[2].id
    ambiguous = cli("logs", "show", "0b7a5f0e")
    assert ambiguous.exit_code == 2 and "matches more than one log row" in ambiguous.stderr
    assert remote_rows[0].id in ambiguous.stderr
    missing = cli("logs", "show", "ffff")
    assert missing.exit_code == 1 and "no log row 'ffff'" in missing.stderr
