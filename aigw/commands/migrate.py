"""`aigw migrate`: apply the `sql/` migrations to Postgres/Supabase; `status`, `--dry-run`."""

from __future__ import annotations

import typer

from aigw.commands._options import JsonOption, examples
from aigw.context import app_context
from aigw.errors import UsageError
from aigw.render import Column, Output
from aigw.render.output import fmt_cell

app = typer.Typer(
    epilog=examples(
        "aigw migrate",
        "aigw migrate --dry-run",
        "aigw migrate --db-url postgresql://postgres@127.0.0.1:5432/app",
    ),
    help="Apply the schema (sql/ migrations) to Postgres or Supabase.",
    invoke_without_command=True,
)

DbUrlOption = typer.Option(
    None,
    "--db-url",
    metavar="URL",
    help="Postgres connection string (default: SUPABASE_DB_URL, else DATABASE_URL).",
    show_default=False,
)

STATUS_COLUMNS = [
    Column("version", lambda m: f"{m.version:04d}", no_wrap=True),
    Column("name", lambda m: m.name, style="cyan"),
    Column("state", lambda m: m.state),
    Column(
        "applied at", lambda m: fmt_cell(m.applied_at and m.applied_at.isoformat(" ", "seconds"))
    ),
    Column("file", lambda m: m.file, style="dim"),
]


@app.callback()
def migrate(
    ctx: typer.Context,
    db_url: str | None = DbUrlOption,
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Run the pending migrations in a transaction and roll it back: would they succeed, "
        "and what would they create?",
    ),
    show_status: bool = typer.Option(False, "--status", help="Same as `aigw migrate status`."),
    json: bool = JsonOption,
) -> None:
    """Apply pending migrations, each in its own transaction (no subcommand needed)."""
    if ctx.invoked_subcommand is not None:
        return
    if show_status and dry_run:
        raise UsageError("give --status or --dry-run, not both")
    if show_status:
        status(ctx, db_url, json)
        return
    from aigw.services.migrate import migrate_apply

    out = Output(json)
    report = migrate_apply(
        app_context(ctx),
        db_url,
        dry_run=dry_run,
        on_wait=lambda: out.note("waiting for another aigw migrate to finish…"),
    )
    if json:
        out.json(report)
        return
    boot = report.bootstrap
    if boot.created:
        verb = "would create" if dry_run else "created"
        out.note(f"{verb} Supabase stand-ins: {', '.join(boot.created)}")
    else:
        out.note(f"auth schema and roles: {boot.kind} (nothing created)")
    if dry_run:
        if not report.applied:
            out.success(f"dry run on {report.database}: nothing pending")
            return
        names = ", ".join(a.name for a in report.applied)
        out.success(f"dry run on {report.database}: {names} would apply; rolled back")
        for obj in report.creates:
            out.print(f"+ {obj}")
        for obj in report.drops:
            out.print(f"- {obj}")
        return
    if not report.applied:
        out.success(f"{report.database} is up to date")
        return
    for a in report.applied:
        out.success(f"applied {a.name} ({a.ms:.0f} ms)")


@app.command("status", epilog=examples("aigw migrate status", "aigw migrate status --json"))
def status(
    ctx: typer.Context,
    db_url: str | None = DbUrlOption,
    json: bool = JsonOption,
) -> None:
    """Applied and pending migrations. And whether Supabase's auth pieces are present."""
    from aigw.services.migrate import migrate_status

    parent = ctx.parent.params if ctx.parent is not None else {}
    out = Output(json or bool(parent.get("json")))
    report = migrate_status(app_context(ctx), db_url or parent.get("db_url"))
    if out.json_mode:
        out.json(report)
        return
    out.rows(report.migrations, STATUS_COLUMNS, title=report.database)
    if report.auth == "missing":
        out.note(f"a run will first create stand-ins: {', '.join(report.auth_missing)}")
    else:
        out.note(f"auth schema and roles: {report.auth}")
    out.note(f"{report.pending} pending")
