"""Shared fixtures: an isolated environment per test, the sandbox over real HTTP, the real
Postgres (a throw-away database per test), and a CLI runner that keeps stdout and stderr apart.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigw.bridge.serve import BridgeServer
from aigw.sandbox import Sandbox, SandboxOptions
from aigw.server.runtime import ServerOptions
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.bridge import bridge_over
from tests.helpers.cli import Cli, point_at
from tests.helpers.gateway import RunningGateway, gateway
from tests.helpers.redis import RedisServer, make_certificates, redis_server_path

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


@pytest.fixture
def keyed_sandbox() -> Iterator[Sandbox]:
    """A sandbox of this test's own that accepts only the gateway key `gk-right`."""
    server = Sandbox(SandboxOptions(gateway_keys=["gk-right"])).start()
    yield server
    server.stop()


@pytest.fixture
def gateway_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The environment of an operator whose gateway is the session sandbox."""
    point_at(monkeypatch, sandbox)
    return sandbox


@pytest.fixture(scope="session")
def session_bridge(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BridgeServer]:
    """One bridge for the session, over the session's sandbox as its model."""
    with bridge_over(sandbox, tmp_path_factory.mktemp("bridge") / "bridge.db") as server:
        yield server


@pytest.fixture(scope="session")
def session_local_gateway(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """`aigw gateway serve --assistants local` for the session, the session's sandbox as its
    model, accepting the gateway key `point_at` sets."""
    options = ServerOptions(upstream=sandbox.url, assistants="local", model_url=sandbox.url)
    with gateway(
        sandbox.url,
        options,
        gateway_api_key="gk-test",
        openai_api_key="sk-model",
        home=tmp_path_factory.mktemp("gateway-home"),
    ) as running:
        yield running


@pytest.fixture(params=["sandbox", "bridge", "gateway"])
def api_env(
    request: pytest.FixtureRequest, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment of an operator whose gateway serves the Assistants API: the sandbox's
    own, the bridge making its runs through the sandbox's chat completions, or the gateway
    server doing the same (`--assistants local`)."""
    targets = {"bridge": "session_bridge", "gateway": "session_local_gateway"}
    target = (
        request.getfixturevalue(targets[request.param]) if request.param in targets else sandbox
    )
    point_at(monkeypatch, target)


@pytest.fixture
def cli() -> Cli:
    """`aigw …` run in process."""
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
    from tests.helpers.migrations import apply_all

    apply_all(fresh_db)
    return fresh_db


@pytest.fixture
def auth_user(migrated_db: str) -> str:
    """The id of a user that exists in auth.users."""
    import psycopg

    user_id = str(uuid.uuid4())
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id) VALUES (%s)", (user_id,))
    return user_id


@pytest.fixture
def remote_env(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The operator's environment points at the migrated database (direct Postgres)."""
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    return migrated_db


# -- the local SQLite store ---------------------------------------------------------------


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[SQLiteRepository]:
    """An empty local store in a file of this test's own."""
    store = SQLiteRepository(tmp_path / "metrics.sqlite3")
    yield store
    store.close()


# -- a real redis-server ------------------------------------------------------------------


def _redis_executable() -> str:
    """Debian's redis-server; under CI=true a missing one fails instead of skipping."""
    found = redis_server_path()
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(
                "redis-server is not installed under CI=true (apt-get install redis-server)"
            )
        pytest.skip("redis-server is not installed")
    return found


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session, on a free loopback port, its files in a tmp dir."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), _redis_executable()).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test; its URL carries the password."""
    redis_server.flush()
    return redis_server.url


def _openssl_executable() -> str:
    """The openssl CLI (for throw-away certificates); under CI=true a missing one fails."""
    found = shutil.which("openssl")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("openssl is not installed under CI=true (apt-get install openssl)")
        pytest.skip("openssl is not installed")
    return found


@pytest.fixture(scope="session")
def tls_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for the session that listens over TLS only (a throw-away CA's cert)."""
    folder = tmp_path_factory.mktemp("redis-tls")
    executable = _redis_executable()
    certificates = make_certificates(folder / "certs", _openssl_executable())
    server = RedisServer(folder / "data", executable, tls=certificates).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that stop and start it."""
    server = RedisServer(tmp_path / "redis", _redis_executable()).start()
    yield server
    server.stop()
