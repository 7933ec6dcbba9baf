"""`aigw logs list/show/tail/prune`: reading the call log and applying retention.

Reads go to the remote store when one is configured (the team-wide log), else to the local
one; `local=True` forces the local store. Prune applies to both stores unless told otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aigw.errors import AigwError, ExitCode, UsageError
from aigw.services.durations import parse_duration, parse_instant
from aigw.services.metrics import open_store
from aigw.storage.base import LogFilter, LogRecord, status_range

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
    _, store = open_store(ctx, local)
    record = store.get(record_id.strip())
    if record is None:
        where = "the local store" if local else "the log"
        raise AigwError(
            f"no log row {record_id!r} in {where}",
            code=ExitCode.API_ERROR,
            hint="`aigw logs list` shows the ids",
        )
    return record


def follow(
    store: Repository,
    where: LogFilter,
    *,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[LogRecord]]:
    """Batches of rows, oldest first: the newest `where.limit` rows, then every poll the rows
    that appeared since (rows written in the same instant are told apart by id)."""
    batch = list(reversed(store.records(where)))
    last = batch[-1].created_at if batch else where.since
    # ids already shown at the instant `last`: the next read starts there, inclusive
    seen = {r.id for r in batch if r.created_at == last}
    yield batch
    while True:
        sleep(interval)
        newer = where._replace(since=last, limit=1000)
        fresh = [r for r in reversed(store.records(newer)) if r.id not in seen]
        if fresh:
            if fresh[-1].created_at != last:
                seen = set()
            last = fresh[-1].created_at
            seen |= {r.id for r in fresh if r.created_at == last}
        yield fresh


@dataclass
class PruneReport:
    cutoff: datetime
    dry_run: bool
    local: int | None  # rows deleted (or, dry run, that would be) in the local store
    remote: int | None  # the same remotely; None when no remote store is configured/asked
    remote_kind: str | None


def prune_cutoff(older_than: str, now: datetime) -> datetime:
    seconds = parse_duration(older_than, "--older-than")
    return now - timedelta(seconds=seconds)


def prune_logs(
    ctx: AppContext, older_than: str, *, dry_run: bool, local_only: bool, now: datetime
) -> PruneReport:
    """Delete (or count, dry run) rows older than the cutoff, in the local and remote stores."""
    from aigw.storage import remote_kind

    cutoff = prune_cutoff(older_than, now)
    local = ctx.local_logs()
    local_count = local.count_before(cutoff) if dry_run else local.prune(cutoff)
    kind = None if local_only else remote_kind(ctx.settings)
    remote_count = None
    remote = ctx.remote if kind is not None else None
    if remote is not None:
        remote_count = remote.count_before(cutoff) if dry_run else remote.prune(cutoff)
    return PruneReport(cutoff, dry_run, local_count, remote_count, kind)


def prune_preview(ctx: AppContext, older_than: str, *, local_only: bool, now: datetime) -> str:
    """The confirmation question, with the counts it is about."""
    report = prune_logs(ctx, older_than, dry_run=True, local_only=local_only, now=now)
    parts = [f"{report.local} local"]
    if report.remote is not None:
        parts.append(f"{report.remote} remote ({report.remote_kind})")
    return f"Delete {' and '.join(parts)} log rows older than {report.cutoff:%Y-%m-%d %H:%M}Z?"
