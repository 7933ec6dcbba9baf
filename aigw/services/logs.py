"""`aigw logs list/show/tail/prune`: reading the call log and applying retention.

Reads go to the remote store when one is configured (the team-wide log), else to the local
one; `local=True` forces the local store. Prune applies to both stores unless told otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from aigw.common.log_record import LogRecord
from aigw.durations import parse_duration, parse_instant
from aigw.errors import AigwError, ExitCode, UsageError
from aigw.services.metrics import open_store
from aigw.storage.base import LogFilter, status_range

if TYPE_CHECKING:
    from aigw.context import AppContext
    from aigw.storage.base import Repository


@dataclass(frozen=True)
class LogQuery:
    since: str | None = None
    until: str | None = None
    endpoint: str | None = None
    status: str | None = None
    method: str | None = None
    agent: str | None = None
    limit: int = 50


def build_filter(query: LogQuery, now: datetime) -> LogFilter:
    """Validated options as a LogFilter; a raw path given to --endpoint is templated."""
    from aigw.gateway.endpoints import template

    if query.status is not None:
        try:
            status_range(query.status)
        except ValueError as exc:
            raise UsageError(f"--status: {exc}") from None
    since = parse_instant(query.since, "--since", now) if query.since else None
    until = parse_instant(query.until, "--until", now) if query.until else None
    if since is not None and until is not None and since >= until:
        raise UsageError("--since must be before --until")
    if query.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {query.limit}")
    return LogFilter(
        since=since,
        until=until,
        endpoint=template(query.endpoint) if query.endpoint else None,
        status=query.status,
        method=query.method.upper() if query.method else None,
        agent=query.agent or None,
        limit=query.limit,
    )


def list_logs(ctx: AppContext, query: LogQuery, *, local: bool, now: datetime) -> list[LogRecord]:
    """Matching rows, newest first."""
    where = build_filter(query, now)
    _, store = open_store(ctx, local)
    return store.records(where)


def show_log(ctx: AppContext, record_id: str, *, local: bool) -> LogRecord:
    """The row with this id, or with the one id that starts with it."""
    from aigw.common.log_record import is_uuid
    from aigw.storage.base import id_prefix_range

    _, store = open_store(ctx, local)
    wanted = record_id.strip().lower()
    span = None if is_uuid(wanted) else id_prefix_range(wanted)
    if span is not None:
        found = store.ids_between(*span, limit=3)
        if len(found) > 1:
            shown = ", ".join(found[:2]) + (", …" if len(found) > 2 else "")
            raise UsageError(
                f"{record_id!r} matches more than one log row ({shown})",
                hint="give more of the id",
            )
        wanted = found[0] if found else wanted
    record = store.get(wanted)
    if record is None:
        where = "the local store" if local else "the log"
        raise AigwError(
            f"no log row {record_id!r} in {where}",
            code=ExitCode.API_ERROR,
            hint="`aigw logs list` shows the ids",
        )
    return record


FOLLOW_PAGE = 1000  # rows read at a time while following; every page is shown
# How late a row may reach a remote store without commit order (Supabase's REST API, or a
# database before sql/0007), after its call started, and still be shown by `logs tail -f`.
REMOTE_FOLLOW_LAG_S = 120.0


@runtime_checkable
class CommitOrdered(Protocol):
    """A store that can list rows in the order their writes were committed."""

    def commit_ordered(self) -> bool: ...

    def follow_position(self) -> Any: ...

    def committed_after(
        self, where: LogFilter, after: Any, limit: int
    ) -> tuple[list[LogRecord], Any]: ...


def follow(
    store: Repository,
    where: LogFilter,
    *,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[LogRecord]]:
    """Batches of rows, oldest first: the newest `where.limit` rows, then every poll the rows
    that appeared since — in commit order where the store keeps one (the local store; Postgres
    from sql/0007 on: a long call that commits after a short one is still shown), else by time
    with REMOTE_FOLLOW_LAG_S of lag."""
    if isinstance(store, CommitOrdered) and store.commit_ordered():
        return _follow_commits(store, where, interval, sleep)
    return _follow_times(store, where, interval, sleep)


def _follow_commits(
    store: CommitOrdered, where: LogFilter, interval: float, sleep: Callable[[float], None]
) -> Iterator[list[LogRecord]]:
    position = store.follow_position()  # before the first read: a row committed meanwhile is kept
    first = list(reversed(cast("Repository", store).records(where)))
    # Rows of the first batch the position has not passed yet: each shown once, then forgotten.
    shown = {r.id for r in first}
    yield first
    while True:
        sleep(interval)
        yielded = False
        while True:
            page, reached = store.committed_after(where, position, FOLLOW_PAGE)
            fresh = [r for r in page if r.id not in shown]
            shown.difference_update(r.id for r in page)
            if fresh:
                yield fresh
                yielded = True
            # A short page read everything committed: wait for the next poll, though the
            # position moved (on a busy database it moves between any two reads).
            done = len(page) < FOLLOW_PAGE or reached == position
            position = reached
            if done:
                break
        if not yielded:
            yield []


def _follow_times(
    store: Repository, where: LogFilter, interval: float, sleep: Callable[[float], None]
) -> Iterator[list[LogRecord]]:
    lag = timedelta(seconds=REMOTE_FOLLOW_LAG_S)
    batch = list(reversed(store.records(where)))
    newest = batch[-1].created_at if batch else datetime.now(UTC)
    seen = {r.id: r.created_at for r in batch if r.created_at >= newest - lag}
    yield batch
    while True:
        sleep(interval)
        window = store.records(where._replace(since=newest - lag, limit=None))
        fresh = [r for r in reversed(window) if r.id not in seen]
        for record in fresh:
            seen[record.id] = record.created_at
            newest = max(newest, record.created_at)
        seen = {i: at for i, at in seen.items() if at >= newest - lag}
        yield fresh


@dataclass
class PruneReport:
    cutoff: datetime
    dry_run: bool
    local: int | None  # rows deleted (or, dry run, that would be) in the local store
    remote: int | None  # the same remotely; None when no remote store is configured/asked
    remote_kind: str | None
    kept_unsynced: int = 0  # local rows old enough but kept: not yet in the remote store


def prune_logs(
    ctx: AppContext,
    older_than: str,
    *,
    dry_run: bool,
    local_only: bool,
    now: datetime,
    delete_unsynced: int | None = None,
) -> PruneReport:
    """Delete (or count, dry run) rows older than the cutoff, in the local and remote stores.

    With a remote store configured, local rows that have not reached it (pending or set aside)
    are kept unless `delete_unsynced` names exactly how many of them would go."""
    from aigw.storage import remote_kind

    cutoff = now - timedelta(seconds=parse_duration(older_than, "--older-than", unit="d"))
    local = ctx.repository
    configured = remote_kind(ctx.settings)
    unsynced = local.count_unsynced_before(cutoff) if configured is not None else 0
    if delete_unsynced is not None and delete_unsynced != unsynced:
        raise UsageError(
            f"--delete-unsynced {delete_unsynced}: {unsynced} rows older than the cutoff have "
            "not reached the remote store",
            hint=f"give --delete-unsynced {unsynced} to delete them, or run `aigw logs sync`",
        )
    keep = delete_unsynced is None
    if dry_run:
        local_count = local.count_before(cutoff) - (unsynced if keep else 0)
    else:
        local_count = local.prune(cutoff, keep_unsynced=keep and configured is not None)
    kind = None if local_only else configured
    remote_count = None
    remote = ctx.remote if kind is not None else None
    if remote is not None:
        remote_count = remote.count_before(cutoff) if dry_run else remote.prune(cutoff)
    kept = unsynced if keep else 0
    return PruneReport(cutoff, dry_run, local_count, remote_count, kind, kept)


def prune_summary(report: PruneReport) -> str:
    """What was (or would be) deleted, and what was kept, in one line."""
    if nothing_to_prune(report) and not report.kept_unsynced:
        return f"nothing to prune: no log rows older than {report.cutoff:%Y-%m-%d %H:%M}Z"
    verb = "would delete" if report.dry_run else "deleted"
    text = f"{verb} {_counts(report)} rows older than {report.cutoff:%Y-%m-%d %H:%M}Z"
    if report.kept_unsynced:
        text += (
            f"; kept {report.kept_unsynced} local rows not yet in the remote store "
            f"(`aigw logs sync` sends them; --delete-unsynced {report.kept_unsynced} deletes them)"
        )
    return text


def nothing_to_prune(report: PruneReport) -> bool:
    return not report.local and not report.remote


def prune_question(report: PruneReport, delete_unsynced: int | None = None) -> str:
    """The confirmation question, with the counts of a dry run."""
    question = f"Delete {_counts(report)} log rows older than {report.cutoff:%Y-%m-%d %H:%M}Z?"
    if delete_unsynced:
        question += f" ({delete_unsynced} of them never reached the remote store)"
    return question


def _counts(report: PruneReport) -> str:
    """`N local` and, with a remote store, `and M remote (kind)`."""
    remote = (
        f" and {report.remote} remote ({report.remote_kind})" if report.remote is not None else ""
    )
    return f"{report.local} local{remote}"
