"""The `aigw migrate` command: JSON and human output, the URL's sources, exit codes, secrecy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from aigw.storage.migrations import discover, shipped_sql_dir

pytestmark = pytest.mark.postgres

SECRET = "hunter2-very-secret"


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{SECRET}@")


def shipped_labels() -> list[str]:
    return [m.label for m in discover()]


def test_migrate_with_json_applies_everything_then_nothing(cli, fresh_db: str) -> None:
    first = cli("migrate", "--db-url", fresh_db, "--json")
    assert first.exit_code == 0, first.stderr
    assert first.stderr == ""
    report = json.loads(first.stdout)
    assert [a["name"] for a in report["applied"]] == shipped_labels()
    assert report["dry_run"] is False
    assert report["bootstrap"]["kind"] == "stand-in"
    assert report["database"].endswith(fresh_db.rsplit("/", 1)[1])

    second = cli("migrate", "--db-url", fresh_db, "--json")
    assert second.exit_code == 0
    assert json.loads(second.stdout)["applied"] == []


def test_migrate_without_json_says_what_it_applied_on_stderr(cli, fresh_db: str) -> None:
    result = cli("migrate", "--db-url", fresh_db)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "✓ applied 0001_core" in result.stderr
    again = cli("migrate", "--db-url", fresh_db)
    assert "is up to date" in again.stderr


def test_status_shows_pending_then_applied_both_ways_of_asking(cli, fresh_db: str) -> None:
    before = json.loads(cli("migrate", "status", "--db-url", fresh_db, "--json").stdout)
    assert before["pending"] == len(shipped_labels())
    assert {m["state"] for m in before["migrations"]} == {"pending"}
    assert before["auth"] in ("missing", "stand-in")

    cli("migrate", "--db-url", fresh_db)

    by_flag = cli("migrate", "--status", "--db-url", fresh_db, "--json")
    by_command = cli("migrate", "--db-url", fresh_db, "--json", "status")
    for result in (by_flag, by_command):
        assert result.exit_code == 0, result.stderr
        after = json.loads(result.stdout)
        assert after["pending"] == 0
        assert after["auth"] == "stand-in"
        assert (after["migrations"][0]["version"], after["migrations"][0]["state"]) == (
            1,
            "applied",
        )
        assert after["migrations"][0]["applied_at"]


def test_status_as_a_table_lists_each_migration(cli, fresh_db: str) -> None:
    result = cli("migrate", "status", "--db-url", fresh_db)
    assert result.exit_code == 0
    assert "0001" in result.stdout and "core" in result.stdout and "pending" in result.stdout


def test_dry_run_reports_success_and_what_it_would_create_without_changing_anything(
    cli, fresh_db: str
) -> None:
    result = cli("migrate", "--dry-run", "--db-url", fresh_db, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert [a["name"] for a in report["applied"]] == shipped_labels()
    assert "table public.ai_gateway_logs" in report["creates"]
    assert "policy ai_gateway_logs_owner_select on public.ai_gateway_logs" in report["creates"]
    with psycopg.connect(fresh_db) as conn:
        row = conn.execute(
            "SELECT to_regclass('ai_gateway_logs'), to_regnamespace('aigw_migrations')"
        ).fetchone()
    assert row == (None, None)


def test_dry_run_for_people_lists_the_objects(cli, fresh_db: str) -> None:
    result = cli("migrate", "--dry-run", "--db-url", fresh_db)
    assert result.exit_code == 0
    assert "+ table public.agents" in result.stdout
    assert "would apply; rolled back" in result.stderr


def test_a_broken_migration_exits_8_with_file_and_line(
    cli, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    shutil.copy(shipped_sql_dir() / "0001_core.sql", folder)
    (folder / "0002_bad.sql").write_text("SELECT 1;\nSELECT * FROM missing_table;\n")
    monkeypatch.setenv("AIGW_SQL_DIR", str(folder))

    result = cli("migrate", "--db-url", with_password(fresh_db), "--json")

    assert result.exit_code == 8
    assert result.stdout == ""
    assert 'sql/0002_bad.sql:2: relation "missing_table" does not exist' in result.stderr
    assert "applied before it: 0001_core" in result.stderr
    assert SECRET not in result.stderr
    status = json.loads(cli("migrate", "status", "--db-url", fresh_db, "--json").stdout)
    assert [(m["name"], m["state"]) for m in status["migrations"]] == [
        ("core", "applied"),
        ("bad", "pending"),
    ]


def test_a_drifted_migration_exits_8_naming_the_file(
    cli, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    shutil.copy(shipped_sql_dir() / "0001_core.sql", folder)
    monkeypatch.setenv("AIGW_SQL_DIR", str(folder))
    assert cli("migrate", "--db-url", fresh_db).exit_code == 0
    with (folder / "0001_core.sql").open("a") as f:
        f.write("\n-- an edit after release\n")

    result = cli("migrate", "--db-url", fresh_db)

    assert result.exit_code == 8
    assert "0001_core.sql changed since it was applied" in result.stderr
    status = json.loads(cli("migrate", "status", "--db-url", fresh_db, "--json").stdout)
    assert status["migrations"][0]["state"] == "drifted"


def test_without_a_database_url_it_exits_3_saying_where_to_find_one(cli) -> None:
    result = cli("migrate", "--json")
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Project Settings → Database → Connection string" in lines[0]
    assert cli("migrate", "status").exit_code == 3


def test_supabase_db_url_wins_over_database_url(
    cli, fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    monkeypatch.setenv("SUPABASE_DB_URL", fresh_db)
    assert cli("migrate").exit_code == 0
    monkeypatch.delenv("SUPABASE_DB_URL")
    result = cli("migrate")
    assert result.exit_code == 8
    assert "cannot connect to postgres@127.0.0.1:1/nowhere" in result.stderr


def test_database_url_alone_is_enough(cli, fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    result = cli("migrate", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["applied"]


def test_the_password_is_never_printed(cli, fresh_db: str) -> None:
    ok = cli("migrate", "--db-url", with_password(fresh_db), "--json")
    status = cli("migrate", "status", "--db-url", with_password(fresh_db))
    unreachable = cli("migrate", "--db-url", f"postgresql://postgres:{SECRET}@127.0.0.1:1/x")
    assert ok.exit_code == 0 and status.exit_code == 0
    assert unreachable.exit_code == 8
    for result in (ok, status, unreachable):
        assert SECRET not in result.stdout + result.stderr


def test_an_unparseable_url_is_a_usage_error_that_does_not_echo_it(cli) -> None:
    result = cli("migrate", "--db-url", f"host=x password={SECRET} bogus")
    assert result.exit_code == 2
    assert SECRET not in result.stderr
    assert "not a postgresql:// URL" in result.stderr


def test_status_and_dry_run_together_are_refused(cli) -> None:
    result = cli("migrate", "--status", "--dry-run", "--db-url", "postgresql://x@y/z")
    assert result.exit_code == 2
