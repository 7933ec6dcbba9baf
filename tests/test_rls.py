"""Row-level security on the migrated schema, as Supabase's API roles see it: the JWT subject
in `request.jwt.claims`, `SET ROLE authenticated` / `anon` / `service_role`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

pytestmark = pytest.mark.postgres

TABLES = ("agents", "conversations", "messages", "ai_gateway_logs")


@dataclass
class Owned:
    url: str
    alice: uuid.UUID
    bob: uuid.UUID


@pytest.fixture
def owned(migrated_db: str) -> Iterator[Owned]:
    """Alice: one conversation, two messages, two logs. Bob: one, one, one. One log of nobody."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id) VALUES (%s), (%s)", (alice, bob))
        row = conn.execute("INSERT INTO agents (name) VALUES ('helper') RETURNING id").fetchone()
        assert row is not None
        agent = row[0]
        for user, messages, logs in ((alice, 2, 2), (bob, 1, 1)):
            conv = conn.execute(
                "INSERT INTO conversations (agent_id, user_id) VALUES (%s, %s) RETURNING id",
                (agent, user),
            ).fetchone()
            assert conv is not None
            for i in range(messages):
                conn.execute(
                    "INSERT INTO messages (conversation_id, role, content) VALUES (%s, 'user', %s)",
                    (conv[0], f"m{i}"),
                )
            for _ in range(logs):
                conn.execute(
                    "INSERT INTO ai_gateway_logs (endpoint, method, user_id, agent_id) "
                    "VALUES ('/v1/threads', 'POST', %s, %s)",
                    (user, agent),
                )
        conn.execute("INSERT INTO ai_gateway_logs (endpoint, method) VALUES ('/v1/x', 'GET')")
    yield Owned(migrated_db, alice, bob)


def counts(url: str, role: str, sub: uuid.UUID | None = None) -> dict[str, int | str]:
    """Rows each table shows to `role` (with JWT subject `sub`), or the error it raises."""
    seen: dict[str, int | str] = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            with conn.transaction(force_rollback=True):
                conn.execute(f"SET LOCAL ROLE {role}")
                if sub is not None:
                    claims = json.dumps({"sub": str(sub), "role": role})
                    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
                try:
                    with conn.transaction():
                        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                    seen[table] = row[0] if row else 0
                except psycopg.errors.InsufficientPrivilege:
                    seen[table] = "denied"
    return seen


def test_an_authenticated_user_sees_only_their_own_rows(owned: Owned) -> None:
    assert counts(owned.url, "authenticated", owned.alice) == {
        "agents": "denied",
        "conversations": 1,
        "messages": 2,
        "ai_gateway_logs": 2,
    }
    assert counts(owned.url, "authenticated", owned.bob) == {
        "agents": "denied",
        "conversations": 1,
        "messages": 1,
        "ai_gateway_logs": 1,
    }


def test_an_authenticated_user_without_rows_or_without_a_subject_sees_none(owned: Owned) -> None:
    nobody = {"agents": "denied", "conversations": 0, "messages": 0, "ai_gateway_logs": 0}
    assert counts(owned.url, "authenticated", uuid.uuid4()) == nobody
    assert counts(owned.url, "authenticated") == nobody


def test_anon_reads_nothing(owned: Owned) -> None:
    assert counts(owned.url, "anon") == dict.fromkeys(TABLES, "denied")


def test_the_service_role_sees_every_row(owned: Owned) -> None:
    assert counts(owned.url, "service_role") == {
        "agents": 1,
        "conversations": 2,
        "messages": 3,
        "ai_gateway_logs": 4,
    }


def test_an_authenticated_user_cannot_write_even_their_own_rows(owned: Owned) -> None:
    with psycopg.connect(owned.url) as conn, conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ROLE authenticated")
        claims = json.dumps({"sub": str(owned.alice)})
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO ai_gateway_logs (endpoint, method, user_id) VALUES ('/x', 'GET', %s)",
                (owned.alice,),
            )


def test_the_service_role_can_write(owned: Owned) -> None:
    with psycopg.connect(owned.url) as conn, conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ROLE service_role")
        conn.execute("INSERT INTO ai_gateway_logs (endpoint, method) VALUES ('/x', 'GET')")
        row = conn.execute("SELECT count(*) FROM ai_gateway_logs").fetchone()
    assert row == (5,)


def test_auth_uid_reads_the_jwt_subject_like_supabase(migrated_db: str) -> None:
    sub = uuid.uuid4()
    with psycopg.connect(migrated_db) as conn:
        conn.execute(
            "SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": str(sub)}),)
        )
        row = conn.execute("SELECT auth.uid()").fetchone()
    assert row == (sub,)
