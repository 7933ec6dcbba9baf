"""Shared fixtures: an isolated environment per test, the sandbox over real HTTP, the real
Postgres (a throw-away database per test), and a CLI runner that keeps stdout and stderr apart.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aigw.cli import app
from aigw.sandbox import Sandbox, SandboxOptions

# Variables aigw reads; none of the developer's own may leak into a test.
_OUR_VARS = (
    "OPENAI_",
    "AI_GATEWAY_URL",
    "GATEWAY_API_KEY",
    "USE_AI_GATEWAY",
    "SUPABASE_",
    "DATABASE_URL",
    "AIGW_",
)

PG_ADMIN_URL = os.environ.get("AIGW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No inherited configuration, a private AIGW_HOME, no stray .env, a wide terminal."""
    for name in list(os.environ):
        if name.upper().startswith(_OUR_VARS):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "aigw-home"
    monkeypatch.setenv("AIGW_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One sandbox for the session, on a free loopback port, with fast runs."""
    server = Sandbox(SandboxOptions(run_duration_ms=50, poll_after_ms=10)).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_sandbox() -> Iterator[Sandbox]:
    """A sandbox of this test's own, for tests that count objects or set faults."""
    server = Sandbox(SandboxOptions(run_duration_ms=50, poll_after_ms=10)).start()
    yield server
    server.stop()


def point_at(
    monkeypatch: pytest.MonkeyPatch, server: Sandbox, gateway_key: str = "gk-test"
) -> None:
    monkeypatch.setenv("AI_GATEWAY_URL", server.url)
    monkeypatch.setenv("GATEWAY_API_KEY", gateway_key)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000abcd")


@pytest.fixture
def gateway_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The environment of an operator whose gateway is the session sandbox."""
    point_at(monkeypatch, sandbox)
    return sandbox


class Cli:
    """Runs `aigw …` in process with stdout and stderr kept apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(app, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def cli() -> Cli:
    return Cli()


# -- the real PostgreSQL ------------------------------------------------------------------


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The server's admin URL; under CI=true an unreachable server fails instead of skipping."""
    problem = _pg_reachable()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL unreachable at {PG_ADMIN_URL} under CI=true: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {problem}")
    return PG_ADMIN_URL


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    import psycopg

    name = f"aigw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(pg_admin_url, name)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrated_db(fresh_db: str) -> str:
    """A fresh database with every `sql/` migration applied (Supabase stand-ins included)."""
    from aigw.storage.migrations import apply_all

    apply_all(fresh_db)
    return fresh_db
