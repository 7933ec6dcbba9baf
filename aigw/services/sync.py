"""Sync: copy pending log rows from the local outbox to the remote store, batch by batch.

Each batch is written remotely (an idempotent upsert on `id`) and only then marked synced
locally (the outbox's cursor moves past it), so a sync interrupted anywhere — killed, timed
out, remote gone — leaves rows pending that the next sync sends again, and the upsert turns
the repeats into no-ops: no duplicate, no gap. Two processes syncing at once are safe for the
same reason.

One bad row never blocks the rest: when the database refuses a batch's data (a value out of
range, a constraint — not the connection), the batch is sent in halves until each refused row
is alone, and those rows are *set aside*: kept locally, listed with the reason (`aigw logs
sync`, `aigw doctor`) and tried again by every `aigw logs sync`. A row the local store cannot
read as a record is set aside the same way.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aigw.errors import AigwError, ConfigError, ExitCode
from aigw.services.records import set_aside_mirror_rows, sync_mirror
from aigw.storage.base import RowsRefused, SetAside

if TYPE_CHECKING:
    from aigw.common.log_record import LogRecord
    from aigw.context import AppContext
    from aigw.settings import Settings
    from aigw.storage.base import PendingBatch, Repository
    from aigw.storage.sqlite import SQLiteRepository

BATCH_SIZE = 1000


@dataclass
class SyncReport:
    synced: int = 0  # rows copied by this sync
    pending: int = 0  # rows still waiting afterwards
    remote: str | None = None  # where to, for messages
    error: str | None = None  # why it stopped early, if it did
    seconds: float = 0.0
    mirror_synced: int = 0  # agents/conversations/messages rows sent
    mirror_pending: int = 0  # mirror rows still waiting afterwards (refused ones included)
    set_aside: int = 0  # rows this sync set aside
    set_aside_rows: list[dict[str, object]] = field(default_factory=list)  # all, with reasons
    # mirror rows (agents, conversations, messages) the database refused: kind, object, reason
    mirror_set_aside_rows: list[dict[str, object]] = field(default_factory=list)


def isolate_refused(
    remote: Repository, records: list[LogRecord], seqs: Sequence[int], error: RowsRefused
) -> list[SetAside]:
    """The rows of a refused batch the database refuses alone; the others are written.

    Halves are sent until each refused row is alone (about 2·log2(n) writes for one bad row
    in n). A failure other than a refusal propagates: nothing is set aside on a guess."""
    if len(records) == 1:
        return [SetAside(seqs[0], records[0].id, error.message)]
    middle = len(records) // 2
    refused: list[SetAside] = []
    for part in (slice(0, middle), slice(middle, None)):
        try:
            remote.write(records[part])
        except RowsRefused as exc:
            refused += isolate_refused(remote, records[part], seqs[part], exc)
    return refused


def retry_set_aside(local: SQLiteRepository, remote: Repository) -> int:
    """Send the rows set aside again (the remote schema or data may have been fixed since);
    returns how many went. Those refused again stay aside with the new reason."""
    batch = local.set_aside_batch()
    if not batch.records:
        return 0
    try:
        remote.write(batch.records)
        refused: list[SetAside] = []
    except RowsRefused as exc:
        refused = isolate_refused(remote, batch.records, batch.seqs, exc)
    local.set_aside(refused)
    still = {r.seq for r in refused}
    local.release_set_aside([seq for seq in batch.seqs if seq not in still])
    return len(batch.records) - len(refused)


def sync_logs(
    local: SQLiteRepository,
    remote: Repository,
    *,
    batch_size: int = BATCH_SIZE,
    deadline: float | None = None,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SyncReport:
    """Send pending rows until none is left, the deadline passes or the remote fails.

    Pipelined: while one batch is being written remotely (on a worker thread, where most of
    the time is the server's), the previous one is marked synced and the next one read
    locally. A batch is still marked only after its own remote write succeeded, and batches
    follow the outbox's commit order, so the cursor they move never skips a row: one another
    process commits meanwhile comes after every row already read.
    """
    started = clock()
    report = SyncReport()
    batch = local.pending(batch_size)
    written: PendingBatch | None = None  # confirmed remotely, not yet marked locally
    written_count = 0  # its rows that went (not set aside)
    while True:
        sending = None
        if (batch.records or batch.malformed) and (deadline is None or clock() < deadline):
            sending = _RemoteWrite(remote, batch.records)
        if written is not None:
            local.mark_synced(written.last)
            report.synced += written_count
            if progress is not None:
                progress(len(written.records))
            written = None
        if sending is None:
            break
        upcoming = local.pending(batch_size, after=batch.last)
        error = sending.wait()
        refused: list[SetAside] = []
        if isinstance(error, RowsRefused):
            try:
                refused = isolate_refused(remote, batch.records, batch.seqs, error)
                error = None
            except Exception as exc:
                error = exc
        if error is not None:
            report.error = str(error)
            break
        local.set_aside([*batch.malformed, *refused])  # before the cursor moves past them
        report.set_aside += len(batch.malformed) + len(refused)
        written, written_count = batch, len(batch.records) - len(refused)
        batch = upcoming
    report.pending = local.pending_count()
    report.seconds = clock() - started
    return report


class _RemoteWrite:
    """One batch written remotely on its own daemon thread (an executor's worker would be
    joined at interpreter exit: a hung remote must never hold the process up)."""

    def __init__(self, remote: Repository, batch: list[LogRecord]):
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(remote, batch), name="aigw-sync-write", daemon=True
        )
        self._thread.start()

    def _run(self, remote: Repository, batch: list[LogRecord]) -> None:
        try:
            remote.write(batch)
        except BaseException as exc:  # handed to the waiting thread, which decides
            self.error = exc

    def wait(self) -> BaseException | None:
        self._thread.join()
        return self.error


def sync_command(
    app: AppContext,
    *,
    batch_size: int = BATCH_SIZE,
    on_start: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """`aigw logs sync`: everything pending, no time budget; a failed remote raises (exit 8)."""
    from aigw.storage import open_remote, remote_label

    settings = app.settings
    label = remote_label(settings)
    if label is None:
        raise ConfigError(
            "no remote store is configured",
            hint="set SUPABASE_DB_URL (or DATABASE_URL), or SUPABASE_URL and "
            "SUPABASE_SERVICE_ROLE_KEY",
        )
    local = app.repository
    app.flush_logs_on_close = False  # this command is the sync; no second try at exit
    pending = local.pending_count()
    if on_start is not None:
        on_start(pending)
    try:
        remote = open_remote(settings, timeout=max(settings.sync_budget, 5.0))
    except AigwError as exc:
        report = SyncReport(pending=pending, remote=label, error=exc.message)
    else:
        assert remote is not None
        try:
            retried = mirrored = 0
            mirror_error = None
            try:  # mirror rows first: log rows name the agents they make
                mirrored = sync_mirror(local, remote, refused_too=True)
            except Exception as exc:
                mirror_error = str(exc)
            with contextlib.suppress(Exception):  # a failing remote fails the sync below too
                retried = retry_set_aside(local, remote)
            report = sync_logs(local, remote, batch_size=batch_size, progress=progress)
            report.synced += retried
            report.mirror_synced = mirrored
            report.error = report.error or mirror_error
        finally:
            remote.close()
        report.remote = label
    report.set_aside_rows = [r._asdict() for r in local.set_aside_rows()]
    report.mirror_set_aside_rows = set_aside_mirror_rows(local)
    report.mirror_pending = len(local.mirror_queue(refused_too=True))
    if report.error is not None:
        raise AigwError(
            f"sync stopped after {report.synced} rows: {report.error}",
            code=ExitCode.DATABASE,
            hint=f"{report.pending} rows are still pending; they are kept and sent next time",
        )
    return report


def flush_pending(settings: Settings, budget: float) -> SyncReport | None:
    """After a command: sync what is pending within `budget` seconds; None if no remote.

    The work runs on a daemon thread with its own connections, and the caller waits at most
    `budget`: a remote that hangs past its connect timeout cannot hold the command up. A batch
    cut off by the exit is simply sent again next time.
    """
    from aigw.storage import open_remote, remote_label
    from aigw.storage.sqlite import SQLiteRepository

    label = remote_label(settings)
    if label is None:
        return None
    outcome = SyncReport(remote=label)
    if budget <= 0:  # syncing after commands is off: only say what waits
        local = SQLiteRepository(settings.state_db_path)
        outcome.pending = local.pending_count()
        outcome.mirror_pending = len(local.mirror_queue())
        local.close()
        return outcome

    def work() -> None:
        local = SQLiteRepository(settings.state_db_path)
        try:
            outcome.pending = local.pending_count()
            outcome.mirror_pending = len(local.mirror_queue())
            if outcome.pending == 0 and outcome.mirror_pending == 0:
                return
            deadline = time.monotonic() + budget
            remote = open_remote(settings, timeout=budget)
            assert remote is not None
            try:
                outcome.mirror_synced = sync_mirror(local, remote)
                outcome.mirror_pending = len(local.mirror_queue())
                done = sync_logs(local, remote, deadline=deadline)
            finally:
                remote.close()
            outcome.synced, outcome.pending, outcome.error = done.synced, done.pending, done.error
        except Exception as exc:
            outcome.error = str(exc)
        finally:
            local.close()

    started = time.monotonic()
    worker = threading.Thread(target=work, name="aigw-log-sync", daemon=True)
    worker.start()
    worker.join(budget)
    outcome.seconds = time.monotonic() - started
    if worker.is_alive():
        outcome.error = outcome.error or f"not finished within {budget:g} s"
    return outcome


def finish_command(app: AppContext) -> list[str]:
    """Close the command's context, then sync the log rows it left pending within
    AIGW_SYNC_BUDGET; every warning for stderr, what could not be sent included."""
    warnings = app.close()
    if not app.logs_to_sync:
        return warnings
    report = flush_pending(app.settings, app.settings.sync_budget)
    if report is not None and (report.pending or report.mirror_pending):
        reason = f": {report.error}" if report.error else ""
        rows = f"{report.pending} log rows"
        if report.mirror_pending:
            rows += f" and {report.mirror_pending} mirror rows (agents, conversations…)"
        warnings.append(
            f"{rows} pending sync to {report.remote}{reason}; "
            "they are kept and sent by the next command or `aigw logs sync`"
        )
    return warnings
