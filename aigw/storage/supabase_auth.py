"""Supabase's `auth` schema, `auth.users`, `auth.uid()` and API roles: found, or stood in for.

On Supabase every piece exists and nothing here runs. On plain PostgreSQL (local development,
CI) only the missing pieces are created, as minimal stand-ins, so the same `sql/` migrations
(foreign keys to `auth.users`, policies on `auth.uid()` and the roles) run unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

STANDIN_MARK = "aigw stand-in for Supabase auth (plain PostgreSQL)"
SUPABASE_ROLES = ("anon", "authenticated", "service_role")


@dataclass
class Bootstrap:
    kind: str  # "supabase": all present, nothing touched; "stand-in": created here or earlier
    created: list[str] = field(default_factory=list)


_STANDIN_SQL = {
    "schema auth": f"""
        CREATE SCHEMA IF NOT EXISTS auth;
        COMMENT ON SCHEMA auth IS '{STANDIN_MARK}';
    """,
    # Supabase's table has some thirty columns; policies and foreign keys only need the id.
    "table auth.users": """
        CREATE TABLE IF NOT EXISTS auth.users (
          id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
          email TEXT,
          created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
    """,
    # Supabase's own definition: the JWT subject PostgREST puts in request.jwt.claims.
    "function auth.uid()": """
        CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
          SELECT coalesce(
            nullif(current_setting('request.jwt.claim.sub', true), ''),
            (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
          )::uuid
        $$;
    """,
}


def _role_sql(role: str) -> str:
    # Roles are cluster-wide: a run on another database may create the same one concurrently.
    return f"""
        DO $$ BEGIN
          CREATE ROLE {role} NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
    """


def probe_auth(conn: psycopg.Connection[Any]) -> tuple[list[str], bool]:
    """The Supabase pieces missing here, and whether `auth` carries aigw's stand-in mark."""
    row = conn.execute(
        """
        SELECT to_regnamespace('auth') IS NOT NULL,
               to_regclass('auth.users') IS NOT NULL,
               to_regprocedure('auth.uid()') IS NOT NULL,
               coalesce(obj_description(to_regnamespace('auth'), 'pg_namespace') = %s, false),
               array(SELECT rolname::text FROM pg_roles WHERE rolname = ANY(%s))
        """,
        (STANDIN_MARK, list(SUPABASE_ROLES)),
    ).fetchone()
    assert row is not None
    has_schema, has_users, has_uid, marked, roles = row
    missing = [f"role {r}" for r in SUPABASE_ROLES if r not in roles]
    pieces = (("schema auth", has_schema), ("table auth.users", has_users))
    missing += [name for name, present in pieces if not present]
    if not has_uid:
        missing.append("function auth.uid()")
    return missing, bool(marked)


def bootstrap(conn: psycopg.Connection[Any]) -> Bootstrap:
    """Create only the missing pieces; with all present (Supabase) run nothing at all."""
    missing, marked = probe_auth(conn)
    if not missing:
        return Bootstrap("stand-in" if marked else "supabase")
    for piece in missing:
        kind, _, name = piece.partition(" ")
        conn.execute(_role_sql(name) if kind == "role" else _STANDIN_SQL[piece])
    conn.execute("GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role")
    return Bootstrap("stand-in", missing)
