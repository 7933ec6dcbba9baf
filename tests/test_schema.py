"""The schema `sql/0001_core.sql` builds, checked on the real Postgres against literals, and the
seed's own queries run on it."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from aigw.storage.migrations import discover, shipped_sql_dir
from tests.helpers.metrics import SEED_COST, SEED_LATENCY_24H
from tests.helpers.migrations import apply_all

pytestmark = pytest.mark.postgres

CORE = shipped_sql_dir() / "0001_core.sql"

TABLES = ["agents", "ai_gateway_logs", "conversations", "messages"]

INDEXES = [
    ("agents", "agents_openai_assistant_id_key"),
    ("agents", "agents_pkey"),
    ("ai_gateway_logs", "ai_gateway_logs_agent_id_created_at_idx"),
    ("ai_gateway_logs", "ai_gateway_logs_created_at_idx"),
    ("ai_gateway_logs", "ai_gateway_logs_endpoint_created_at_idx"),
    ("ai_gateway_logs", "ai_gateway_logs_pkey"),
    ("ai_gateway_logs", "ai_gateway_logs_user_id_created_at_idx"),
    ("conversations", "conversations_agent_id_idx"),
    ("conversations", "conversations_openai_thread_id_key"),
    ("conversations", "conversations_pkey"),
    ("conversations", "conversations_user_id_idx"),
    ("messages", "messages_conversation_id_created_at_idx"),
    ("messages", "messages_openai_message_id_key"),
    ("messages", "messages_pkey"),
]

POLICIES = [
    ("agents", "agents_service_role_all", "ALL", "{service_role}"),
    ("ai_gateway_logs", "ai_gateway_logs_owner_select", "SELECT", "{authenticated}"),
    ("ai_gateway_logs", "ai_gateway_logs_service_role_all", "ALL", "{service_role}"),
    ("conversations", "conversations_owner_select", "SELECT", "{authenticated}"),
    ("conversations", "conversations_service_role_all", "ALL", "{service_role}"),
    ("messages", "messages_owner_select", "SELECT", "{authenticated}"),
    ("messages", "messages_service_role_all", "ALL", "{service_role}"),
]

# The contract with the call logger: name, type, nullable, default.
LOG_COLUMNS = [
    ("id", "uuid", "NO", "gen_random_uuid()"),
    ("created_at", "timestamp with time zone", "NO", "now()"),
    ("endpoint", "text", "NO", None),
    ("method", "text", "NO", None),
    ("status_code", "integer", "YES", None),
    ("latency_ms", "integer", "YES", None),
    ("request_payload", "jsonb", "YES", None),
    ("response_payload", "jsonb", "YES", None),
    ("error_message", "text", "YES", None),
    ("user_id", "uuid", "YES", None),
    ("agent_id", "uuid", "YES", None),
    ("path", "text", "YES", None),
    ("request_id", "text", "YES", None),
    ("call_id", "uuid", "YES", None),
    ("attempt", "integer", "YES", None),
    ("route", "text", "YES", None),
    ("cache_status", "text", "YES", None),
    ("thread_id", "text", "YES", None),
    ("run_id", "text", "YES", None),
    ("assistant_id", "text", "YES", None),
    ("model", "text", "YES", None),
    ("prompt_tokens", "bigint", "YES", None),  # since 0004
    ("completion_tokens", "bigint", "YES", None),  # since 0004
    ("total_tokens", "bigint", "YES", None),  # since 0004
    ("source", "text", "YES", None),
    ("xact_id", "xid8", "YES", "pg_current_xact_id()"),  # since 0007
]


@pytest.fixture
def core_only(tmp_path: Path) -> Path:
    """A migrations folder holding only 0001_core.sql, so later migrations do not blur it."""
    folder = tmp_path / "sql"
    folder.mkdir()
    shutil.copy(CORE, folder / CORE.name)
    return folder


def fetch(url: str, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params or None).fetchall()


def test_migrating_an_empty_database_creates_exactly_the_core_tables_indexes_and_policies(
    fresh_db: str, core_only: Path
) -> None:
    assert apply_all(fresh_db, core_only) == ["0001_core"]

    tables = fetch(
        fresh_db,
        "SELECT tablename, rowsecurity FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    assert tables == [(t, True) for t in TABLES]
    indexes = fetch(
        fresh_db,
        "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    )
    assert indexes == INDEXES
    policies = fetch(
        fresh_db,
        "SELECT tablename, policyname, cmd, roles::text FROM pg_policies "
        "WHERE schemaname = 'public' ORDER BY 1, 2",
    )
    assert policies == POLICIES


def test_the_log_table_has_every_seed_column_and_the_logged_extras(migrated_db: str) -> None:
    columns = fetch(
        migrated_db,
        "SELECT column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = 'ai_gateway_logs' ORDER BY ordinal_position",
    )
    assert columns == LOG_COLUMNS


def test_every_shipped_migration_applies_on_an_empty_database(fresh_db: str) -> None:
    applied = apply_all(fresh_db)
    assert applied == [m.label for m in discover()]
    assert applied[0] == "0001_core"


def test_the_seed_apps_own_log_insert_works(migrated_db: str) -> None:
    user = uuid.uuid4()
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id) VALUES (%s)", (user,))
        # logGatewayCall's insert: exactly these columns, nothing else.
        conn.execute(
            "INSERT INTO ai_gateway_logs (endpoint, method, status_code, latency_ms, "
            "error_message, user_id) VALUES (%s, %s, %s, %s, %s, %s)",
            ("/v1/threads", "POST", 200, 123, None, user),
        )
        row = conn.execute("SELECT id, created_at, source FROM ai_gateway_logs").fetchone()
    assert row is not None
    assert isinstance(row[0], uuid.UUID) and row[1] is not None and row[2] is None


def test_deleting_an_agent_keeps_its_logs_without_the_link(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        agent = conn.execute("INSERT INTO agents (name) VALUES ('a') RETURNING id").fetchone()
        assert agent is not None
        conn.execute(
            "INSERT INTO ai_gateway_logs (endpoint, method, agent_id) "
            "VALUES ('/v1/runs', 'POST', %s)",
            (agent[0],),
        )
        conn.execute("DELETE FROM agents WHERE id = %s", (agent[0],))
        rows = conn.execute("SELECT agent_id FROM ai_gateway_logs").fetchall()
    assert rows == [(None,)]


def test_a_message_role_other_than_user_or_assistant_is_refused(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conv = _conversation(conn, uuid.uuid4())
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO messages (conversation_id, role, content) VALUES (%s, 'system', 'x')",
                (conv,),
            )


def test_updating_a_conversation_moves_its_updated_at_unless_the_update_sets_it(
    migrated_db: str,
) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conv = _conversation(conn, uuid.uuid4())
        conn.execute("UPDATE conversations SET updated_at = '2000-01-01Z' WHERE id = %s", (conv,))
        kept = conn.execute("SELECT updated_at::date::text FROM conversations").fetchone()
        conn.execute(
            "UPDATE conversations SET openai_thread_id = 'thread_x' WHERE id = %s", (conv,)
        )
        moved = conn.execute("SELECT updated_at > '2001-01-01' FROM conversations").fetchone()
    assert kept == ("2000-01-01",)
    assert moved == (True,)


def test_a_mirrored_message_upserts_on_its_openai_id(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conv = _conversation(conn, uuid.uuid4())
        for content in ("first", "edited"):
            conn.execute(
                "INSERT INTO messages (conversation_id, openai_message_id, role, content) "
                "VALUES (%s, 'msg_1', 'assistant', %s) "
                "ON CONFLICT (openai_message_id) DO UPDATE SET content = EXCLUDED.content",
                (conv, content),
            )
        assert conn.execute("SELECT content FROM messages").fetchall() == [("edited",)]


# -- the seed's "Dashboard de Monitoramento" queries, verbatim (tests/helpers/metrics.py) ---


def test_the_seeds_latency_query_counts_the_last_24_hours_per_endpoint(migrated_db: str) -> None:
    logs = [
        ("/v1/threads", 200, 100, "1 hour"),
        ("/v1/threads", 500, 300, "2 hours"),
        ("/v1/threads", 201, 999, "25 hours"),  # outside the window
        ("/v1/assistants", 200, 50, "10 minutes"),
        ("/v1/assistants", 429, 70, "20 minutes"),
        ("/v1/assistants", 200, 30, "30 minutes"),
    ]
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        for endpoint, status, latency, age in logs:
            conn.execute(
                "INSERT INTO ai_gateway_logs "
                "(endpoint, method, status_code, latency_ms, created_at) "
                "VALUES (%s, 'GET', %s, %s, now() - %s::interval)",
                (endpoint, status, latency, age),
            )
        rows = conn.execute(SEED_LATENCY_24H).fetchall()
    assert [(e, float(avg), total, ok) for e, avg, total, ok in rows] == [
        ("/v1/threads", 200.0, 2, 1),
        ("/v1/assistants", 50.0, 3, 2),
    ]


def test_the_seeds_cost_query_estimates_tokens_per_agent(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        user = uuid.uuid4()
        helper = _conversation(conn, user, agent="helper")
        writer = _conversation(conn, user, agent="writer")
        for conv, content, age in [
            (helper, "x" * 40, "1 day"),
            (helper, "y" * 20, "2 days"),
            (helper, "z" * 400, "31 days"),  # outside the window
            (writer, "w" * 100, "1 hour"),
        ]:
            conn.execute(
                "INSERT INTO messages (conversation_id, role, content, created_at) "
                "VALUES (%s, 'user', %s, now() - %s::interval)",
                (conv, content, age),
            )
        rows = conn.execute(SEED_COST).fetchall()
    assert rows == [("writer", 1, 25), ("helper", 2, 15)]


def _conversation(conn: psycopg.Connection, user: uuid.UUID, agent: str = "agent") -> uuid.UUID:
    conn.execute("INSERT INTO auth.users (id) VALUES (%s) ON CONFLICT DO NOTHING", (user,))
    row = conn.execute("INSERT INTO agents (name) VALUES (%s) RETURNING id", (agent,)).fetchone()
    assert row is not None
    conv = conn.execute(
        "INSERT INTO conversations (agent_id, user_id) VALUES (%s, %s) RETURNING id",
        (row[0], user),
    ).fetchone()
    assert conv is not None
    return conv[0]
