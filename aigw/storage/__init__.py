"""Which store is behind the Repository and Mirror interfaces, decided from the settings.

* `open_repository`: the local SQLite store (always; it is the outbox and the embedded default).
* `open_remote`: the remote store when one is configured — a direct Postgres URL
  (SUPABASE_DB_URL / DATABASE_URL, preferred: COPY is much faster than REST) or else Supabase's
  REST API (SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY); None when neither is set.
Nothing heavy is imported here: psycopg and supabase-py load only when a remote is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from aigw.common.state import AsyncSharedState, SharedState
    from aigw.settings import Settings
    from aigw.storage.failover import Health
    from aigw.storage.postgres import PostgresRepository
    from aigw.storage.sqlite import SQLiteRepository
    from aigw.storage.state import SQLiteState
    from aigw.storage.supabase_rest import SupabaseRepository

    RemoteRepository = PostgresRepository | SupabaseRepository

T = TypeVar("T")


def open_repository(settings: Settings) -> SQLiteRepository:
    """The local store under AIGW_HOME, migrated."""
    from aigw.storage.sqlite import SQLiteRepository

    return SQLiteRepository(settings.state_db_path)


def open_state(settings: Settings, *, warn: Callable[[str], None] | None = None) -> SharedState:
    """The shared state: the SQLite file under AIGW_HOME, or Redis (AIGW_STATE_URL) falling
    back to it while Redis does not answer (docs/scaling.md)."""
    from aigw.storage.state import SQLiteState

    if settings.state_url is None:
        return SQLiteState(settings.state_db_path)
    from aigw.storage.failover import FailoverState
    from aigw.storage.redis_state import RedisState, state_errors

    shared = _redis(RedisState, settings)
    local = SQLiteState(settings.state_db_path)
    return FailoverState(shared, local, _health(settings, warn or _to_stderr), state_errors())


def open_async_state(
    settings: Settings, local: SQLiteState, *, warn: Callable[[str], None]
) -> AsyncSharedState:
    """The gateway server's shared state over `local` (AIGW_HOME's SQLite state)."""
    from aigw.storage.failover import AsyncFailoverState
    from aigw.storage.local_async import KEYS_WINDOW_S, AsyncLocal

    if settings.state_url is None:
        # Not the log rows' window, which may be long: a retry sent after the client's own
        # timeout, with no answer to settle the keys, must find its first try's key.
        window = min(settings.commit_window, KEYS_WINDOW_S)
        return AsyncLocal(local, window=window, warn=warn)
    from aigw.storage.redis_state import AsyncRedisState, state_errors

    shared = _redis(AsyncRedisState, settings)
    return AsyncFailoverState(shared, local, _health(settings, warn), state_errors())


def check_state_url(settings: Settings) -> None:
    """Raise ConfigError when AIGW_STATE_URL has an option redis cannot read (no connection
    is made): the gateway checks it before it binds and forks its workers."""
    if settings.state_url is not None:
        from aigw.storage.redis_state import RedisState

        _redis(RedisState, settings).close()


def _redis(client: Callable[..., T], settings: Settings) -> T:
    assert settings.state_url is not None
    try:
        return client(settings.state_url.get_secret_value(), timeout=settings.state_timeout)
    except ValueError as exc:  # an option in the URL's query redis cannot read
        raise _bad_url(exc) from None


def _health(settings: Settings, warn: Callable[[str], None]) -> Health:
    from aigw.settings import mask_url
    from aigw.storage.failover import Health

    assert settings.state_url is not None
    return Health(
        mask_url(settings.state_url.get_secret_value()),
        warn,
        fail_closed=settings.rate_limit_fallback == "fail-closed",
    )


def _bad_url(exc: ValueError) -> Exception:
    from aigw.errors import ConfigError

    return ConfigError(f"invalid AIGW_STATE_URL: {exc}")


def _to_stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def remote_kind(settings: Settings) -> str | None:
    """'postgres', 'supabase' or None: which remote store the settings point at."""
    if settings.db_url:
        return "postgres"
    key = settings.supabase_service_role_key
    if settings.supabase_url and key is not None and key.get_secret_value():
        return "supabase"
    return None


def remote_label(settings: Settings) -> str | None:
    """Where the remote store is, for messages (never with a password or key)."""
    kind = remote_kind(settings)
    if kind == "postgres":
        from aigw.errors import AigwError
        from aigw.storage.postgres import describe_url

        try:
            return f"Postgres at {describe_url(settings.db_url or '')}"
        except AigwError:  # a label must not fail: connecting says what is wrong
            return "Postgres (a database URL aigw cannot read)"
    if kind == "supabase":
        from aigw.settings import mask_url

        return f"Supabase at {mask_url(settings.supabase_url or '')}"
    return None


def open_remote(settings: Settings, *, timeout: float = 5.0) -> RemoteRepository | None:
    """The remote store (Repository and Mirror), or None when none is configured.

    Raises AigwError (exit 8) when it is configured but cannot be reached within `timeout`.
    """
    kind = remote_kind(settings)
    if kind == "postgres":
        from aigw.storage.postgres import PostgresRepository

        return PostgresRepository(settings.db_url or "", timeout=timeout)
    if kind == "supabase":
        from aigw.storage.supabase_rest import SupabaseRepository

        key = settings.supabase_service_role_key
        assert key is not None and settings.supabase_url
        return SupabaseRepository(settings.supabase_url, key.get_secret_value(), timeout=timeout)
    return None
