"""Apply the numbered SQL files in `sql/` to Postgres/Supabase: in order, once each.

Each migration runs in its own transaction together with its record in
`aigw_migrations.applied` (version, name, checksum, applied_at). A transaction-scoped advisory
lock, held on a second connection for the whole run, serialises concurrent runs; being
transaction-scoped it also works through Supabase's pooler in transaction mode, where a
session lock could leak onto a pooled backend. Server-side prepared statements are off for the
same pooler (`prepare_threshold=None`).

Before the migrations, a bootstrap step makes sure Supabase's `auth` schema, `auth.users`,
`auth.uid()` and the roles `anon`, `authenticated`, `service_role` exist: on Supabase they do and
nothing is touched; on plain PostgreSQL only the missing pieces are created, as minimal stand-ins.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigw.errors import AigwError, ConfigError, ExitCode, UsageError
from aigw.storage import postgres
from aigw.storage.pg_catalog import catalog_snapshot, diff_catalog
from aigw.storage.sql_split import leading_noise, split_statements
from aigw.storage.supabase_auth import Bootstrap, bootstrap, probe_auth

if TYPE_CHECKING:
    import psycopg

SQL_FILE = re.compile(r"^(\d{4})_([a-z0-9][a-z0-9_]*)\.sql$")
TRACKING_SCHEMA = "aigw_migrations"
LOCK_KEY = 0x6169_6777_6D69_6772  # "aigwmigr" in ASCII: one key for every aigw migrate run


class MigrationError(AigwError):
    """The database refused: connection, drift or a failing migration (exit 8)."""

    def __init__(self, message: str, hint: str | None = None, applied: list[str] | None = None):
        super().__init__(message, code=ExitCode.DATABASE, hint=hint)
        self.applied = applied or []


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str
    checksum: str

    @property
    def label(self) -> str:
        """`0001_core`: the version and name, as the tracking table and messages show it."""
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class MigrationState:
    version: int
    name: str
    state: str  # applied | pending | drifted | missing-file
    file: str | None
    checksum: str
    applied_at: datetime | None = None


@dataclass
class Status:
    migrations: list[MigrationState]
    auth: str  # "supabase" (all present), "stand-in" (aigw's), "missing" (a run would create)
    auth_missing: list[str]


@dataclass
class Applied:
    version: int
    name: str
    file: str
    ms: float


@dataclass
class ApplyResult:
    applied: list[Applied]
    bootstrap: Bootstrap
    dry_run: bool = False
    creates: list[str] = field(default_factory=list)  # dry run: catalog objects that would appear
    drops: list[str] = field(default_factory=list)  # dry run: catalog objects that would go


# -- files ----------------------------------------------------------------------------------


def shipped_sql_dir() -> Path:
    """The migrations shipped with aigw: `aigw/sql`, in a checkout a link to the top `sql/`."""
    return Path(__file__).resolve().parents[1] / "sql"


def checksum(text: str) -> str:
    """The SHA-256 of a migration's text, line endings normalised (a Windows checkout of the
    same file is not drift)."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def display_path(path: Path) -> str:
    """Relative to the working folder when under it (`sql/0001_core.sql`), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def discover(sql_dir: Path | None = None) -> list[Migration]:
    """The migrations in `sql_dir`, ordered by version; badly named or duplicate files refused."""
    folder = sql_dir or shipped_sql_dir()
    if not folder.is_dir():
        raise ConfigError(
            f"migrations folder not found: {folder}",
            hint="set AIGW_SQL_DIR to the folder holding 0001_core.sql",
        )
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = SQL_FILE.match(path.name)
        if not match:
            raise UsageError(f"{display_path(path)}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise UsageError(
                f"{display_path(path)}: version {version:04d} is already used by "
                f"{display_path(found[version].path)}"
            )
        text = path.read_text(encoding="utf-8")
        found[version] = Migration(version, match.group(2), path, text, checksum(text))
    return [found[v] for v in sorted(found)]


# -- connection -----------------------------------------------------------------------------


def _connect(db_url: str) -> psycopg.Connection[Any]:
    return postgres.connect(db_url, timeout=10, application_name="aigw migrate")


@contextmanager
def migration_lock(db_url: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the advisory lock for the block, on a connection of its own inside one transaction."""
    with (
        _connect(db_url) as conn,
        conn.transaction(),
    ):
        got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
        if not (got and got[0]):
            if on_wait:
                on_wait()
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        yield


# -- tracking -------------------------------------------------------------------------------


def ensure_tracking(conn: psycopg.Connection[Any]) -> None:
    """Create the tracking schema and its table when missing."""
    conn.execute(
        f"""
        CREATE SCHEMA IF NOT EXISTS {TRACKING_SCHEMA};
        CREATE TABLE IF NOT EXISTS {TRACKING_SCHEMA}.applied (
          version INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          checksum TEXT NOT NULL,
          applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        """
    )


def read_applied(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, str, datetime]]:
    """version → (name, checksum, applied_at); empty when nothing was ever applied."""
    exists = conn.execute("SELECT to_regclass(%s)", (f"{TRACKING_SCHEMA}.applied",)).fetchone()
    if not exists or exists[0] is None:
        return {}
    rows = conn.execute(
        f"SELECT version, name, checksum, applied_at FROM {TRACKING_SCHEMA}.applied"
    ).fetchall()
    return {v: (n, c, at) for v, n, c, at in rows}


def states(
    migrations: list[Migration], applied: dict[int, tuple[str, str, datetime]]
) -> list[MigrationState]:
    """Every migration known to the files or to the database, with its state."""
    result = []
    by_version = {m.version: m for m in migrations}
    for version in sorted(set(by_version) | set(applied)):
        m = by_version.get(version)
        record = applied.get(version)
        if m is None:
            assert record is not None
            result.append(
                MigrationState(version, record[0], "missing-file", None, record[1], record[2])
            )
            continue
        if record is None:
            state, at = "pending", None
        else:
            state, at = ("applied" if record[1] == m.checksum else "drifted"), record[2]
        result.append(MigrationState(version, m.name, state, display_path(m.path), m.checksum, at))
    return result


def refuse_drift(found: list[MigrationState]) -> None:
    """Raise MigrationError when an applied file was changed or removed since."""
    for s in found:
        if s.state == "drifted":
            raise MigrationError(
                f"{s.file} changed since it was applied (version {s.version:04d}); "
                "refusing to continue",
                hint="migrations are never edited once applied: restore the file and add a "
                "new numbered migration instead",
            )
        if s.state == "missing-file":
            raise MigrationError(
                f"migration {s.version:04d}_{s.name} is applied in the database but has no file "
                "here; refusing to continue",
                hint="this checkout is older than the database: update aigw, or point "
                "AIGW_SQL_DIR at the current sql/ folder",
            )


# -- running --------------------------------------------------------------------------------


def status(db_url: str, sql_dir: Path | None = None) -> Status:
    """The migrations' states and the Supabase pieces a run would create; changes nothing."""
    migrations = discover(sql_dir)
    with _connect(db_url) as conn:
        missing, marked = probe_auth(conn)
        auth = "stand-in" if marked else "supabase" if not missing else "missing"
        return Status(states(migrations, read_applied(conn)), auth, missing)


def apply(
    db_url: str,
    sql_dir: Path | None = None,
    *,
    dry_run: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> ApplyResult:
    """Bootstrap, then apply the pending migrations (or try them all and roll back: dry run)."""
    migrations = discover(sql_dir)
    with (
        migration_lock(db_url, on_wait),
        _connect(db_url) as conn,
    ):
        if dry_run:
            return _dry_run(conn, migrations, db_url)
        boot, done = _run_pending(conn, migrations, db_url, dry_run=False)
        return ApplyResult(done, boot)


def _execute(conn: psycopg.Connection[Any], m: Migration) -> None:
    # No parameters: psycopg sends the whole file as one simple query, parsed by the server.
    conn.execute(m.sql)
    conn.execute(
        f"INSERT INTO {TRACKING_SCHEMA}.applied (version, name, checksum) VALUES (%s, %s, %s)",
        (m.version, m.name, m.checksum),
    )


def _dry_run(
    conn: psycopg.Connection[Any], migrations: list[Migration], db_url: str
) -> ApplyResult:
    with conn.transaction(force_rollback=True):
        before = catalog_snapshot(conn, TRACKING_SCHEMA)
        boot, tried = _run_pending(conn, migrations, db_url, dry_run=True)
        after = catalog_snapshot(conn, TRACKING_SCHEMA)
    creates, drops = diff_catalog(before, after)
    return ApplyResult(tried, boot, dry_run=True, creates=creates, drops=drops)


def _run_pending(
    conn: psycopg.Connection[Any], migrations: list[Migration], db_url: str, *, dry_run: bool
) -> tuple[Bootstrap, list[Applied]]:
    """Bootstrap, then each pending migration in its own transaction (in a dry run: savepoints
    of the transaction rolled back, so a failure can still be located)."""
    import psycopg

    with conn.transaction():
        boot = bootstrap(conn)
        ensure_tracking(conn)
    found = states(migrations, read_applied(conn))
    refuse_drift(found)
    pending = {s.version for s in found if s.state == "pending"}
    done: list[Applied] = []
    for m in migrations:
        if m.version not in pending:
            continue
        started = time.perf_counter()
        try:
            with conn.transaction():
                _execute(conn, m)
        except psycopg.Error as exc:
            error = _failure(conn, m, exc, db_url, [] if dry_run else [a.name for a in done])
            if dry_run:
                error.message = f"dry run: {error.message}; nothing was changed"
            raise error from None
        ms = (time.perf_counter() - started) * 1000
        done.append(Applied(m.version, m.label, display_path(m.path), round(ms, 1)))
    return boot, done


# -- failures: file and line ----------------------------------------------------------------


def _failure(
    conn: psycopg.Connection[Any],
    m: Migration,
    exc: psycopg.Error,
    db_url: str,
    done: list[str],
) -> MigrationError:
    line = _error_line(conn, m, exc)
    where = display_path(m.path) + (f":{line}" if line else "")
    first = postgres.scrub(postgres.first_line(exc), db_url)
    code = f" ({exc.sqlstate})" if exc.sqlstate else ""
    kept = f"; applied before it: {', '.join(done)}" if done else ""
    return MigrationError(f"{where}: {first}{code} — {m.label} rolled back{kept}", applied=done)


def _error_line(conn: psycopg.Connection[Any], m: Migration, exc: psycopg.Error) -> int | None:
    position = exc.diag.statement_position
    if position:  # 1-based characters into the whole file, as sent
        return m.sql.count("\n", 0, int(position) - 1) + 1
    return _replay_line(conn, m, exc)


def _replay_line(conn: psycopg.Connection[Any], m: Migration, exc: psycopg.Error) -> int | None:
    """Errors at execution carry no position: replay statement by statement, rolled back, to
    find the failing one. Only diagnostics depend on this split, never what gets applied."""
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            for offset, statement in split_statements(m.sql):
                try:
                    conn.execute(statement)
                except psycopg.Error as again:
                    if again.sqlstate != exc.sqlstate:
                        return None  # the split misread the file; better no line than a wrong one
                    inner = again.diag.statement_position
                    at = offset + (int(inner) - 1 if inner else leading_noise(statement))
                    return m.sql.count("\n", 0, at) + 1
    except psycopg.Error:
        return None
    return None
