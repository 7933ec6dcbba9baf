"""`aigw migrate` on the real Postgres: once, in order, serialised, honest about failures."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from aigw.storage import migrations
from aigw.storage.migrations import LOCK_KEY, MigrationError, apply, shipped_sql_dir
from aigw.storage.sql_split import split_statements
from tests.helpers.migrations import apply_all

pytestmark = pytest.mark.postgres

CORE = shipped_sql_dir() / "0001_core.sql"


def sql_dir(tmp_path: Path, **files: str) -> Path:
    """A migrations folder: the shipped 0001_core.sql plus `files` (name → SQL)."""
    folder = tmp_path / "sql"
    folder.mkdir(exist_ok=True)
    shutil.copy(CORE, folder / CORE.name)
    for name, text in files.items():
        (folder / f"{name}.sql").write_text(text)
    return folder


def fetch(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def applied_versions(url: str) -> list[tuple[int, str]]:
    return fetch(url, "SELECT version, name FROM aigw_migrations.applied ORDER BY version")


def test_a_second_run_applies_nothing(fresh_db: str) -> None:
    first = apply_all(fresh_db)
    assert first[0] == "0001_core"
    assert apply_all(fresh_db) == []
    assert [v for v, _ in applied_versions(fresh_db)] == [int(x[:4]) for x in first]


def test_two_concurrent_runs_apply_once_and_the_other_finds_nothing(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = sql_dir(tmp_path, **{"0002_extra": "CREATE TABLE extra (id int);"})
    waiting = [threading.Event(), threading.Event()]
    results: list[list[str] | BaseException] = [[], []]

    def run(i: int) -> None:
        try:
            results[i] = [a.name for a in apply(fresh_db, folder, on_wait=waiting[i].set).applied]
        except BaseException as exc:
            results[i] = exc

    # Hold the lock ourselves so both runs are surely waiting on it at the same time.
    with psycopg.connect(fresh_db) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        assert all(event.wait(30) for event in waiting), "both runs should wait for the lock"
        holder.rollback()  # releases the lock: the two runs now race for it
    for t in threads:
        t.join(60)

    assert sorted(map(str, results)) == ["['0001_core', '0002_extra']", "[]"]
    assert applied_versions(fresh_db) == [(1, "core"), (2, "extra")]


def test_an_applied_migration_whose_file_changed_is_refused_by_name(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = sql_dir(tmp_path, **{"0002_extra": "CREATE TABLE extra (id int);"})
    apply_all(fresh_db, folder)
    (folder / "0002_extra.sql").write_text("CREATE TABLE extra (id bigint);")
    (folder / "0003_more.sql").write_text("CREATE TABLE more (id int);")

    with pytest.raises(MigrationError) as caught:
        apply_all(fresh_db, folder)

    assert "0002_extra.sql changed since it was applied" in caught.value.message
    assert fetch(fresh_db, "SELECT to_regclass('more')") == [(None,)]  # nothing else ran


def test_crlf_line_endings_are_not_drift(fresh_db: str, tmp_path: Path) -> None:
    folder = sql_dir(tmp_path, **{"0002_extra": "CREATE TABLE extra (id int);\n-- end\n"})
    apply_all(fresh_db, folder)
    (folder / "0002_extra.sql").write_bytes(b"CREATE TABLE extra (id int);\r\n-- end\r\n")
    assert apply_all(fresh_db, folder) == []


def test_a_migration_applied_here_but_missing_from_the_files_is_refused(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = sql_dir(tmp_path, **{"0002_extra": "CREATE TABLE extra (id int);"})
    apply_all(fresh_db, folder)
    (folder / "0002_extra.sql").unlink()
    with pytest.raises(MigrationError, match="0002_extra is applied in the database but has no"):
        apply_all(fresh_db, folder)


def test_a_broken_migration_rolls_back_with_file_and_line_and_earlier_ones_stay(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = sql_dir(
        tmp_path,
        **{
            "0002_good": "CREATE TABLE good (id int);",
            "0003_bad": "CREATE TABLE half (id int);\n\n-- oops\nCRATE TABLE typo (id int);\n",
            "0004_later": "CREATE TABLE later (id int);",
        },
    )
    with pytest.raises(MigrationError) as caught:
        apply_all(fresh_db, folder)

    message = caught.value.message
    assert '0003_bad.sql:4: syntax error at or near "CRATE" (42601)' in message
    assert "0003_bad rolled back; applied before it: 0001_core, 0002_good" in message
    assert applied_versions(fresh_db) == [(1, "core"), (2, "good")]
    created = fetch(
        fresh_db,
        "SELECT to_regclass('good') IS NOT NULL, to_regclass('half') IS NOT NULL, "
        "to_regclass('later') IS NOT NULL",
    )
    assert created == [(True, False, False)]


def test_an_error_found_only_when_executing_is_located_by_line(
    fresh_db: str, tmp_path: Path
) -> None:
    # "relation already exists" carries no position; the runner replays to find the line.
    bad = (
        "CREATE TABLE fine (id int);\n-- a comment; with a semicolon\n"
        "CREATE TABLE agents (\n  id int\n);\n"
    )
    folder = sql_dir(tmp_path, **{"0002_clash": bad})
    with pytest.raises(MigrationError) as caught:
        apply_all(fresh_db, folder)
    assert '0002_clash.sql:3: relation "agents" already exists (42P07)' in caught.value.message
    assert fetch(fresh_db, "SELECT to_regclass('fine')") == [(None,)]


def test_splitting_statements_skips_quotes_dollar_quotes_and_comments() -> None:
    sql = (
        "SELECT 'a;b';\n"
        "/* x; /* nested; */ y; */ SELECT 1;\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;\n"
        "SELECT E'it\\'s;', \"we;ird\" FROM t -- trailing; comment\n"
    )
    parts = [text.strip() for _, text in split_statements(sql)]
    assert len(parts) == 4
    assert parts[2].endswith("$body$ SELECT 1; $body$")
    assert parts[3].startswith("SELECT E'it\\'s;'")


def test_a_dry_run_reports_what_would_be_created_and_changes_nothing(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = sql_dir(tmp_path)
    apply_all(fresh_db, folder)
    (folder / "0002_extra.sql").write_text(
        "ALTER TABLE agents ADD COLUMN archived boolean;\n"
        "CREATE TABLE extra (id int PRIMARY KEY, note text);\n"
        "CREATE INDEX extra_note_idx ON extra (note);\n"
        "DROP INDEX conversations_agent_id_idx;\n"
    )

    result = apply(fresh_db, folder, dry_run=True)

    assert [a.name for a in result.applied] == ["0002_extra"]
    assert result.creates == [
        "column public.agents.archived",
        "index public.extra_note_idx",
        "index public.extra_pkey",
        "table public.extra",
    ]
    assert result.drops == ["index public.conversations_agent_id_idx"]
    assert applied_versions(fresh_db) == [(1, "core")]
    assert fetch(fresh_db, "SELECT to_regclass('extra')") == [(None,)]


def test_a_dry_run_of_a_broken_migration_fails_and_changes_nothing(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = sql_dir(tmp_path, **{"0002_bad": "SELECT 1;\nSELECT nope FROM agents;\n"})
    with pytest.raises(MigrationError) as caught:
        apply(fresh_db, folder, dry_run=True)
    assert caught.value.message.startswith("dry run: ")
    assert '0002_bad.sql:2: column "nope" does not exist' in caught.value.message
    assert caught.value.message.endswith("nothing was changed")
    assert fetch(fresh_db, "SELECT to_regnamespace('aigw_migrations'), to_regclass('agents')") == [
        (None, None)
    ]


def test_a_badly_named_or_duplicate_file_is_refused(tmp_path: Path) -> None:
    folder = sql_dir(tmp_path, **{"0001_again": "SELECT 1;"})
    with pytest.raises(Exception, match="version 0001 is already used"):
        migrations.discover(folder)
    (folder / "0001_again.sql").unlink()
    (folder / "2_short.sql").write_text("SELECT 1;")
    with pytest.raises(Exception, match=r"named NNNN_name\.sql"):
        migrations.discover(folder)


# -- Supabase's auth pieces ----------------------------------------------------------------

SUPABASE_LIKE = """
DO $$ BEGIN CREATE ROLE anon NOLOGIN;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE authenticated NOLOGIN;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE service_role NOLOGIN;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY, instance_id uuid, email varchar(255));
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT '{uid}'::uuid /* supabase */ $$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
"""


def test_on_a_supabase_like_database_the_auth_pieces_are_left_untouched(fresh_db: str) -> None:
    uid = "00000000-0000-0000-0000-00000000abcd"
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SUPABASE_LIKE.replace("{uid}", uid))

    result = apply(fresh_db)

    assert result.bootstrap.kind == "supabase"
    assert result.bootstrap.created == []
    assert fetch(
        fresh_db,
        "SELECT prosrc LIKE '%supabase%', auth.uid()::text FROM pg_proc WHERE proname = 'uid'",
    ) == [(True, uid)]
    assert fetch(fresh_db, "SELECT obj_description('auth'::regnamespace)") == [(None,)]
    columns = fetch(
        fresh_db,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'auth' AND table_name = 'users'",
    )
    assert columns == [(3,)]


def test_on_plain_postgres_the_stand_ins_are_created_once(fresh_db: str) -> None:
    first = apply(fresh_db)
    assert first.bootstrap.kind == "stand-in"
    # Roles are cluster-wide, so another database may have created them already.
    assert {"schema auth", "table auth.users", "function auth.uid()"} <= set(
        first.bootstrap.created
    )
    second = apply(fresh_db)
    assert (second.bootstrap.kind, second.bootstrap.created) == ("stand-in", [])
