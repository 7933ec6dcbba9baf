"""The local store: one SQLite file under AIGW_HOME, shared by every aigw process on the machine.

It is the embedded default store and the outbox in front of the remote one. Concurrency rules,
so that many processes at once never fail with "database is locked":
  * WAL journal: readers never block the writer, and a commit is one append to the WAL;
  * every write is one short transaction holding the write lock from its start, so SQLite's
    busy handler (busy_timeout) waits for it instead of failing half-way: `BEGIN IMMEDIATE`
    around several statements, or a single statement in autocommit mode (one INSERT takes
    the lock before it reads anything, which is all BEGIN IMMEDIATE is for);
  * synchronous=NORMAL: a committed row survives the process being killed (the WAL is in the
    OS's hands); only a power cut can drop the last commits, in exchange for no fsync per call.
    The fsyncs happen at checkpoints instead; WAL_AUTOCHECKPOINT pages between them (SQLite's
    default is 1,000) make them rarer and let one checkpoint copy a hot page once for many
    commits. The last connection to close checkpoints and removes the WAL, as always.
The schema is `sqlite_migrations.MIGRATIONS`, applied on open up to PRAGMA user_version.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigw.common.log_record import COLUMNS, RECORD_FIELDS, LogRecord, id_time
from aigw.errors import ConfigError
from aigw.storage import sqlite_metrics
from aigw.storage.aggregates import GroupStats, MetricsQuery, ModelTokens, UsageStats
from aigw.storage.base import (
    LogFilter,
    PendingBatch,
    Repository,
    RowsNotWritten,
    SetAside,
    filter_sql,
)
from aigw.storage.sqlite_migrations import MIGRATIONS, statements

BUSY_TIMEOUT_S = 30.0
TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "total_tokens")
# Fewer, larger checkpoints: their fsyncs are most of what a commit costs in WAL mode.
WAL_AUTOCHECKPOINT = 4000


def _insert_row() -> str:
    """INSERT for one row in COLUMNS order (`to_row`). A row without an agent takes the one the
    mirror recorded for its assistant; `id` is not checked (no index: ids are UUIDv7, made
    once per row)."""
    values = [f"?{n}" for n in range(1, len(COLUMNS) + 1)]
    agent, assistant = COLUMNS.index("agent_id"), COLUMNS.index("assistant_id")
    values[agent] = (
        f"coalesce(?{agent + 1}, (SELECT agent_id FROM agent_ids "
        f"WHERE openai_assistant_id = ?{assistant + 1}))"
    )
    return f"INSERT INTO ai_gateway_logs ({', '.join(COLUMNS)}) VALUES ({', '.join(values)})"


INSERT_ROW = _insert_row()
# Rows come back as (seq, *LogRecord's fields): a LogRecord once checked (from_row).
_SELECT = f"SELECT seq, {', '.join(RECORD_FIELDS)} FROM ai_gateway_logs"
_READ_CREATED = RECORD_FIELDS.index("created_at")
_SELECTED_ID = 1 + RECORD_FIELDS.index("id")  # in a _SELECT row, after seq
_READ_INTS = [RECORD_FIELDS.index(n) for n in ("status_code", "attempt", *TOKEN_COLUMNS)]
_READ_LATENCY = RECORD_FIELDS.index("latency_ms")
# A row is in the remote store when the sync cursor passed it and it was not set aside.
_SYNCED = "(seq <= (SELECT seq FROM sync_cursor) AND seq NOT IN (SELECT seq FROM sync_set_aside))"
ID_TIME_SLACK_S = 1.0  # a record's id and created_at are taken together; allow for clock steps
_READ_PAYLOADS = [RECORD_FIELDS.index(name) for name in ("request_payload", "response_payload")]


def open_local(path: Path, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """`connect` and `migrate`; a store that cannot be opened is a configuration error
    (exit 3) naming the file, never a traceback."""
    try:
        conn = connect(path, timeout)
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn
    except OSError as exc:
        raise ConfigError(
            f"cannot use AIGW_HOME {path.parent}: {exc.strerror or exc}",
            hint="set AIGW_HOME to a writable folder",
        ) from None
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        broken = not isinstance(exc, sqlite3.OperationalError) or "malformed" in str(exc)
        if broken:
            raise ConfigError(
                f"the local store {path} is not a readable SQLite database ({exc})",
                hint=f"move it aside (mv '{path}' '{path}.broken') and run the command again",
            ) from None
        raise ConfigError(
            f"cannot open the local store {path} ({exc})",
            hint="check AIGW_HOME: the folder must exist or be creatable, and be writable",
        ) from None


def _private_file(path: Path) -> None:
    """AIGW_HOME made 0700 and the store 0600: it holds call logs and cached answers. SQLite
    gives its -wal and -shm files the mode of the database file; a store left
    readable by others is narrowed (the folder, perhaps the user's own, is left as it is)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            with contextlib.suppress(OSError):  # not ours, or gone: SQLite will say
                if name.stat().st_mode & 0o077:
                    name.chmod(0o600)


def connect(path: Path, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, with a busy timeout."""
    _private_file(path)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    deadline = time.monotonic() + timeout
    # Switching to WAL needs an exclusive lock once per file; a racing first open may be refused
    # without the busy handler being consulted, so wait for it here.
    while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction holding the write lock from its first statement.

    Begun inside the `try`: a Ctrl-C landing just after BEGIN must still roll back, or the
    connection would keep the write lock and the process's other connection to the file wait
    out the whole busy timeout for it."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the file up to the last migration; returns the version it is at afterwards."""
    target = len(migrations)
    if conn.execute("PRAGMA user_version").fetchone()[0] >= target:
        return target
    with immediate(conn):
        # Re-read under the lock: another process may have migrated while we waited.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for script in migrations[version:]:
            for statement in statements(script):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {max(version, target)}")
    return target


# What SQLite refuses in a row (an integer past 64 bits, a string it cannot encode).
_REFUSED_ROW = (sqlite3.Error, OverflowError, ValueError)


def json_text(value: Any) -> str | None:
    """A payload as compact JSON text for its column; None stays NULL."""
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_row(r: LogRecord) -> tuple[Any, ...]:
    """A LogRecord as INSERT_ROW's parameters (COLUMNS order)."""
    return (
        r.id,
        r.created_at.timestamp(),
        r.endpoint,
        r.method,
        r.status_code,
        r.latency_ms,
        json_text(r.request_payload),
        json_text(r.response_payload),
        r.error_message,
        r.user_id,
        r.agent_id,
        r.path,
        r.request_id,
        r.call_id,
        r.attempt,
        r.route,
        r.cache_status,
        r.thread_id,
        r.run_id,
        r.assistant_id,
        r.model,
        r.prompt_tokens,
        r.completion_tokens,
        r.total_tokens,
        r.source,
    )


def from_row(row: Sequence[Any]) -> LogRecord:
    """A row in LogRecord's field order as a LogRecord; ValueError says what is malformed."""
    values = list(row)
    created = values[_READ_CREATED]
    try:
        values[_READ_CREATED] = datetime.fromtimestamp(created, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValueError(f"created_at is not a time ({created!r:.40})") from None
    for index in _READ_PAYLOADS:
        if values[index] is not None:
            try:
                values[index] = json.loads(values[index])
            except (TypeError, ValueError):
                raise ValueError(f"{RECORD_FIELDS[index]} is not JSON") from None
    for index in _READ_INTS:
        if values[index] is not None and type(values[index]) is not int:
            raise ValueError(f"{RECORD_FIELDS[index]} is not an integer ({values[index]!r:.40})")
    latency = values[_READ_LATENCY]
    if latency is not None and type(latency) not in (int, float):
        raise ValueError(f"latency_ms is not a number ({latency!r:.40})")
    return LogRecord(*values)  # selected in RECORD_FIELDS order: LogRecord's own


def where_clause(where: LogFilter) -> tuple[str, list[Any]]:
    """The WHERE for a LogFilter (`?` placeholders, times as epoch seconds)."""
    agent_rows = sqlite_metrics.agent_rows("?")
    return filter_sql(where, mark="?", when=lambda t: t.timestamp(), agent_rows=agent_rows)


def _batch(rows: Sequence[Sequence[Any]], last: int) -> PendingBatch:
    """Rows selected by _SELECT as a batch to send: records, their seqs, the malformed."""
    records: list[LogRecord] = []
    seqs: list[int] = []
    malformed: list[SetAside] = []
    for row in rows:
        try:
            records.append(from_row(row[1:]))
        except ValueError as exc:
            malformed.append(SetAside(row[0], str(row[_SELECTED_ID]), f"malformed locally: {exc}"))
        else:
            seqs.append(row[0])
    return PendingBatch(records, last, seqs, malformed)


class SQLiteRepository(Repository):
    """Repository over the local SQLite file (see the module docstring for the concurrency)."""

    def __init__(self, path: Path, *, timeout: float = BUSY_TIMEOUT_S):
        self.path = path
        self.conn = open_local(path, timeout)
        self._writer = self.conn.cursor()  # for the rows of calls, one at a time
        self._lock = threading.Lock()  # one connection, possibly used from a sync thread
        # Rows a read skipped because they cannot be records, by seq: said once, at the end.
        self.malformed: dict[int, SetAside] = {}

    def _readable(self, rows: Iterable[Sequence[Any]]) -> list[LogRecord]:
        """Rows selected by _SELECT as records; malformed ones are skipped and remembered."""
        found: list[LogRecord] = []
        for row in rows:
            try:
                found.append(from_row(row[1:]))
            except ValueError as exc:
                self.malformed[row[0]] = SetAside(row[0], str(row[_SELECTED_ID]), str(exc))
        return found

    # -- Repository ------------------------------------------------------------------------
    def write(self, records: Sequence[LogRecord]) -> None:
        """All the records in one short transaction; if SQLite refuses one, the others are
        stored all the same and RowsNotWritten names the ones that were not."""
        if len(records) == 1:  # a call's row: one statement in autocommit is its own transaction
            row = to_row(records[0])
            with self._lock:
                try:
                    self._writer.execute(INSERT_ROW, row)
                except _REFUSED_ROW as exc:
                    raise RowsNotWritten(list(records), exc) from exc
            return
        if not records:
            return
        rows = [to_row(record) for record in records]
        with self._lock:
            try:
                with immediate(self.conn) as conn:
                    conn.executemany(INSERT_ROW, rows)
                return
            except _REFUSED_ROW as exc:
                problem: BaseException = exc
            # One row must not hold back the rest: take them one by one.
            refused = []
            with immediate(self.conn) as conn:
                for record, row in zip(records, rows, strict=True):
                    try:
                        conn.execute(INSERT_ROW, row)
                    except _REFUSED_ROW as exc:
                        refused.append(record)
                        problem = exc
        if refused:
            raise RowsNotWritten(refused, problem)

    def records(self, where: LogFilter) -> list[LogRecord]:
        """Rows matching `where`, newest first; malformed rows are set aside, not raised."""
        clause, params = where_clause(where)
        sql = f"{_SELECT}{clause} ORDER BY created_at DESC, id"
        if where.limit is not None:
            sql += " LIMIT ?"
            params.append(where.limit)
        with self._lock:
            return self._readable(self.conn.execute(sql, params))

    def commit_ordered(self) -> bool:
        """Rows are followed by `seq`, the order their writes committed in (one writer)."""
        return True

    def follow_position(self) -> int:
        """The position of the newest committed row (0 when there is none)."""
        with self._lock:
            row = self.conn.execute("SELECT max(seq) FROM ai_gateway_logs").fetchone()
        return int(row[0] or 0)

    def committed_after(
        self, where: LogFilter, after: int, limit: int
    ) -> tuple[list[LogRecord], int]:
        """Rows matching `where` (its time window and limit aside) committed after position
        `after`, in commit order, at most `limit`; and the position read up to."""
        clause, params = where_clause(where._replace(since=None, until=None))
        clause = f"{clause} AND seq > ?" if clause else " WHERE seq > ?"
        sql = f"{_SELECT}{clause} ORDER BY seq LIMIT ?"
        with self._lock:
            rows = self.conn.execute(sql, [*params, after, limit]).fetchall()
        return self._readable(rows), rows[-1][0] if rows else after

    def get(self, record_id: str) -> LogRecord | None:
        """The row with this id, found through the time its UUIDv7 carries; or None."""
        at = id_time(record_id)
        with self._lock:
            row = None
            if at is not None:  # a UUIDv7 is made with its row: look around that time
                sql = f"{_SELECT} WHERE created_at BETWEEN ? AND ? AND id = ?"
                around = (at - ID_TIME_SLACK_S, at + ID_TIME_SLACK_S, record_id)
                row = self.conn.execute(sql, around).fetchone()
            if row is None:  # an older id, or a clock that jumped: read the whole table
                row = self.conn.execute(f"{_SELECT} WHERE id = ?", (record_id,)).fetchone()
        found = self._readable([row] if row else [])
        return found[0] if found else None

    def ids_between(self, low: str, high: str, limit: int) -> list[str]:
        """Up to `limit` ids from `low` to `high`, in order."""
        sql = "SELECT id FROM ai_gateway_logs WHERE id BETWEEN ? AND ? ORDER BY id LIMIT ?"
        with self._lock:
            return [row[0] for row in self.conn.execute(sql, (low, high, limit))]

    def pending(self, limit: int, after: int | None = None) -> PendingBatch:
        """The next rows after the sync cursor (or `after`), in the order they were written."""
        with self._lock:
            if after is None:
                after = self._cursor()
            rows = self.conn.execute(
                f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return _batch(rows, rows[-1][0] if rows else after)

    def pending_count(self) -> int:
        """How many rows are past the sync cursor."""
        with self._lock:
            sql = "SELECT count(*) FROM ai_gateway_logs WHERE seq > ?"
            return int(self.conn.execute(sql, (self._cursor(),)).fetchone()[0])

    def mark_synced(self, through: int) -> None:
        # max(): a slower sync that ends later never moves the cursor back. (seq numbers are
        # never reused, AUTOINCREMENT: a prune cannot put new rows behind the cursor.)
        """Move the sync cursor to `through` (never back)."""
        with self._lock:
            self.conn.execute("UPDATE sync_cursor SET seq = max(seq, ?)", (through,))

    def _cursor(self) -> int:
        return int(self.conn.execute("SELECT seq FROM sync_cursor").fetchone()[0])

    # -- rows sync passed over ---------------------------------------------------------------
    def set_aside(self, rows: Sequence[SetAside]) -> None:
        """Remember rows sync did not send, with why; a row set aside again gets the new reason."""
        if not rows:
            return
        now = time.time()
        with self._lock, immediate(self.conn) as conn:
            conn.executemany(
                "INSERT INTO sync_set_aside (seq, id, reason, set_aside_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason",
                [(r.seq, r.id, r.reason[:500], now) for r in rows],
            )

    def set_aside_rows(self) -> list[SetAside]:
        """Every row set aside, oldest first."""
        with self._lock:
            rows = self.conn.execute("SELECT seq, id, reason FROM sync_set_aside ORDER BY seq")
            return [SetAside(*row) for row in rows]

    def set_aside_batch(self) -> PendingBatch:
        """The rows set aside, as a batch to send again (the malformed ones stay aside)."""
        with self._lock:
            rows = self.conn.execute(
                f"{_SELECT} WHERE seq IN (SELECT seq FROM sync_set_aside) ORDER BY seq"
            ).fetchall()
        return _batch(rows, 0)

    def release_set_aside(self, seqs: Sequence[int]) -> None:
        """These rows are in the remote store now, or deleted: no longer set aside."""
        with self._lock, immediate(self.conn) as conn:
            conn.executemany("DELETE FROM sync_set_aside WHERE seq = ?", [(s,) for s in seqs])

    # -- mirror rows owed to the remote store (services/records.py) ------------------------
    def check_writable(self) -> None:
        """Raise sqlite3.Error unless a write would be taken now (a read-only file or folder
        fails here; a full disk only when the write comes)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.execute("UPDATE sync_cursor SET seq = seq")
            finally:
                self.conn.execute("ROLLBACK")

    def queue_mirror(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue a mirror row (agent, conversation, message) for the next sync."""
        with self._lock:
            self.conn.execute(
                "INSERT INTO mirror_outbox (kind, payload) VALUES (?, ?)",
                (kind, json.dumps(payload, ensure_ascii=False)),
            )

    def mirror_queue(self, *, refused_too: bool = False) -> list[tuple[int, str, dict[str, Any]]]:
        """(seq, kind, payload) of the mirror rows not yet sent, oldest first."""
        sql = "SELECT seq, kind, payload FROM mirror_outbox"
        if not refused_too:
            sql += " WHERE refused IS NULL"
        with self._lock:
            rows = self.conn.execute(sql + " ORDER BY seq").fetchall()
        return [(seq, kind, json.loads(payload)) for seq, kind, payload in rows]

    def mirror_refused_rows(self) -> list[tuple[int, str, dict[str, Any], str]]:
        """(seq, kind, payload, reason) of the mirror rows the database refused, oldest first."""
        sql = "SELECT seq, kind, payload, refused FROM mirror_outbox WHERE refused IS NOT NULL"
        with self._lock:
            rows = self.conn.execute(sql + " ORDER BY seq").fetchall()
        return [(seq, kind, json.loads(payload), why) for seq, kind, payload, why in rows]

    def mirror_sent(self, seq: int) -> None:
        """Forget a queued mirror row: the remote store has it."""
        with self._lock:
            self.conn.execute("DELETE FROM mirror_outbox WHERE seq = ?", (seq,))

    def mirror_refused(self, seq: int, reason: str) -> None:
        """Keep a queued mirror row aside with the reason the remote store gave."""
        with self._lock:
            self.conn.execute(
                "UPDATE mirror_outbox SET refused = ? WHERE seq = ?", (reason[:500], seq)
            )

    # -- retention -----------------------------------------------------------------------
    def prune(self, older_than: datetime, *, keep_unsynced: bool = False) -> int:
        """Delete rows created before `older_than`; with `keep_unsynced`, only those already in
        the remote store (at or before the sync cursor, and not set aside)."""
        with self._lock, immediate(self.conn) as conn:
            sql = "DELETE FROM ai_gateway_logs WHERE created_at < ?"
            if keep_unsynced:
                sql += f" AND {_SYNCED}"
            deleted = conn.execute(sql, (older_than.timestamp(),)).rowcount
            conn.execute(
                "DELETE FROM sync_set_aside WHERE seq NOT IN (SELECT seq FROM ai_gateway_logs)"
            )
            return deleted

    def count_unsynced_before(self, older_than: datetime) -> int:
        """How many rows created before `older_than` have not reached the remote store."""
        with self._lock:
            sql = f"SELECT count(*) FROM ai_gateway_logs WHERE created_at < ? AND NOT {_SYNCED}"
            return int(self.conn.execute(sql, (older_than.timestamp(),)).fetchone()[0])

    # -- aggregate reads (SQL in storage/sqlite_metrics.py) -------------------------------
    def metrics(self, query: MetricsQuery) -> list[GroupStats]:
        """The window's stats, computed in SQLite."""
        with self._lock:
            return sqlite_metrics.metrics(self.conn, query)

    def usage(self, query: MetricsQuery) -> list[UsageStats]:
        """The window's token usage, computed in SQLite."""
        with self._lock:
            return sqlite_metrics.usage(self.conn, query)

    def aggregates(self, query: MetricsQuery) -> tuple[list[GroupStats], list[UsageStats]]:
        """`metrics` and `usage`, one after the other on the one connection."""
        return self.metrics(query), self.usage(query)

    def model_trend(self, query: MetricsQuery) -> list[ModelTokens]:
        with self._lock:
            return sqlite_metrics.model_trend(self.conn, query)

    def count_before(self, older_than: datetime) -> int:
        """How many rows `prune(older_than)` would delete."""
        with self._lock:
            return sqlite_metrics.count_before(self.conn, older_than)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self.conn.close()

    # -- the assistant → agents.id map (filled by the mirror, read by the logging layer) ---
    def remember_agent(
        self, openai_assistant_id: str, agent_id: str, model: str | None = None
    ) -> None:
        """Record the assistant's agent (and its model, when known); rows of it not yet synced
        get it too (the call that created the assistant was logged before its agent existed)."""
        with self._lock, immediate(self.conn) as conn:
            conn.execute(
                "INSERT INTO agent_ids (openai_assistant_id, agent_id, model, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (openai_assistant_id) DO UPDATE SET "
                "agent_id = excluded.agent_id, model = coalesce(excluded.model, model), "
                "updated_at = excluded.updated_at",
                (openai_assistant_id, agent_id, model, time.time()),
            )
            conn.execute(
                "UPDATE ai_gateway_logs SET agent_id = ? WHERE seq > (SELECT seq FROM sync_cursor)"
                " AND agent_id IS NULL AND assistant_id = ?",
                (agent_id, openai_assistant_id),
            )

    def forget(
        self,
        log_ids: Sequence[str],
        *,
        openai_assistant_id: str | None = None,
        openai_thread_id: str | None = None,
    ) -> int:
        """Delete the named log rows, the queued mirror rows of the assistant and the thread,
        and the assistant's agent mapping (what `doctor --smoke` made); how many went. A log
        row not yet synced never reaches the remote store."""
        with self._lock, immediate(self.conn) as conn:
            gone = 0
            for start in range(0, len(log_ids), 500):
                chunk = list(log_ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                gone += conn.execute(
                    f"DELETE FROM ai_gateway_logs WHERE id IN ({marks})", chunk
                ).rowcount
            rows = conn.execute("SELECT seq, payload FROM mirror_outbox").fetchall()
            for seq, payload in rows:
                found = json.loads(payload)
                if (
                    openai_assistant_id is not None
                    and found.get("openai_assistant_id") == openai_assistant_id
                ) or (
                    openai_thread_id is not None
                    and found.get("openai_thread_id") == openai_thread_id
                ):
                    gone += conn.execute("DELETE FROM mirror_outbox WHERE seq = ?", (seq,)).rowcount
            if openai_assistant_id is not None:
                conn.execute(
                    "DELETE FROM agent_ids WHERE openai_assistant_id = ?", (openai_assistant_id,)
                )
            return gone

    def agent_ids(self) -> dict[str, str]:
        """assistant id → agents.id, as last seen by this machine's mirror writes."""
        with self._lock:
            return dict(self.conn.execute("SELECT openai_assistant_id, agent_id FROM agent_ids"))
