"""Migrations as a use case: find the database URL, then apply, dry-run or report status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aigw.errors import ConfigError

if TYPE_CHECKING:
    from aigw.context import AppContext
    from aigw.storage.migrations import Applied, Bootstrap, MigrationState

NO_URL = (
    "no database URL: pass --db-url or set SUPABASE_DB_URL (Supabase dashboard → "
    "Project Settings → Database → Connection string)"
)


@dataclass
class MigrateReport:
    database: str  # user@host:port/dbname, never the password
    dry_run: bool
    applied: list[Applied]  # in a dry run: the ones that would be applied
    bootstrap: Bootstrap
    creates: list[str] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)


@dataclass
class StatusReport:
    database: str
    auth: str
    auth_missing: list[str]
    migrations: list[MigrationState]
    pending: int


def database_url(app: AppContext, flag: str | None) -> str:
    """--db-url, else SUPABASE_DB_URL, else DATABASE_URL; none → exit 3 saying where to look."""
    url = flag or app.settings.db_url
    if not url:
        raise ConfigError(NO_URL)
    return url


def migrate_apply(
    app: AppContext,
    db_url: str | None,
    *,
    dry_run: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> MigrateReport:
    from aigw.storage import migrations, postgres

    url = database_url(app, db_url)
    target = postgres.describe_url(url)
    result = migrations.apply(url, app.settings.sql_dir, dry_run=dry_run, on_wait=on_wait)
    return MigrateReport(
        target, dry_run, result.applied, result.bootstrap, result.creates, result.drops
    )


def migrate_status(app: AppContext, db_url: str | None) -> StatusReport:
    from aigw.storage import migrations, postgres

    url = database_url(app, db_url)
    target = postgres.describe_url(url)
    found = migrations.status(url, app.settings.sql_dir)
    pending = sum(1 for m in found.migrations if m.state == "pending")
    return StatusReport(target, found.auth, found.auth_missing, found.migrations, pending)
