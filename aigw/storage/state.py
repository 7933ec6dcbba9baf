"""The local state store: cache entries, breaker state, rate-limit buckets, remembered keys.

Every aigw process on the machine shares it through the SQLite file `settings.state_db_path`
(WAL mode, so readers never wait for the writer). Each read-modify-write is one short
`BEGIN IMMEDIATE` transaction: the writer lock is taken before reading, so two processes
can never both decide from the same stale row (e.g. both claim the half-open probe).
Only `sqlite3` is imported: a refused call must stay fast (no SDK, no HTTP library).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Appended, in order, to the local store's migration list (aigw/storage/sqlite.py);
# never edit a released entry, add a new one.
STATE_MIGRATIONS: list[tuple[str, str]] = [
    (
        "resilience state: cache, breaker, rate limit, remembered keys",
        """
        CREATE TABLE IF NOT EXISTS cache_entries (
            key TEXT PRIMARY KEY,      -- sha256 of method, URL, route, credential fingerprint
            tag TEXT NOT NULL,         -- what a write invalidates: 'HOST assistant:asst_…'
            url TEXT NOT NULL,
            stored_at REAL NOT NULL,
            status INTEGER NOT NULL,
            headers TEXT NOT NULL,     -- JSON list of [name, value]
            body BLOB NOT NULL
        );
        CREATE INDEX IF NOT EXISTS cache_entries_tag ON cache_entries (tag);
        CREATE TABLE IF NOT EXISTS breaker_state (
            host TEXT PRIMARY KEY,
            state TEXT NOT NULL,       -- closed | open | half_open
            failures INTEGER NOT NULL, -- consecutive
            opened_at REAL,
            probe_at REAL,             -- open: when a probe may go; half_open: when it left
            last_error TEXT
        );
        CREATE TABLE IF NOT EXISTS rate_limit_buckets (
            name TEXT PRIMARY KEY,
            tat REAL NOT NULL          -- GCRA theoretical arrival time
        );
        CREATE TABLE IF NOT EXISTS remembered_keys (
            scope TEXT PRIMARY KEY,    -- the upstream host
            fingerprint TEXT NOT NULL, -- sha256 prefix of the key that worked, never the key
            announced INTEGER NOT NULL DEFAULT 0
        );
        """,
    ),
]


@dataclass(frozen=True)
class CacheEntry:
    key: str
    tag: str
    url: str
    stored_at: float
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class BreakerRow:
    host: str
    state: str
    failures: int
    opened_at: float | None = None
    probe_at: float | None = None
    last_error: str | None = None


def _ensure_schema(conn: sqlite3.Connection) -> None:
    """Apply the shared migration list when it exists, else create our tables directly."""
    try:
        from aigw.storage.sqlite import migrate  # type: ignore[attr-defined]
    except ImportError:
        migrate = None
    if migrate is not None:
        migrate(conn)
        return
    for _name, ddl in STATE_MIGRATIONS:
        conn.executescript(ddl)


class StateStore:
    """One connection per process, used under a lock (layers may run on several threads)."""

    def __init__(self, path: Path, *, busy_timeout: float = 10.0):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        _ensure_schema(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def immediate(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction that holds the writer lock from its first read."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        with self._lock:
            row: tuple[object, ...] | None = self._conn.execute(sql, args).fetchone()
            return row

    # -- cache -----------------------------------------------------------------------------
    def cache_get(self, key: str) -> CacheEntry | None:
        row = self._read(
            "SELECT key, tag, url, stored_at, status, headers, body FROM cache_entries"
            " WHERE key = ?",
            (key,),
        )
        if row is None:
            return None
        k, tag, url, stored_at, status, headers, body = row
        return CacheEntry(
            str(k),
            str(tag),
            str(url),
            float(stored_at),  # type: ignore[arg-type]
            int(status),  # type: ignore[call-overload]
            [(str(n), str(v)) for n, v in json.loads(str(headers))],
            bytes(body),  # type: ignore[arg-type]
        )

    def cache_put(self, entry: CacheEntry, *, keep_for: float = 86_400.0) -> None:
        with self.immediate() as db:
            db.execute(
                "INSERT OR REPLACE INTO cache_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.key,
                    entry.tag,
                    entry.url,
                    entry.stored_at,
                    entry.status,
                    json.dumps(entry.headers),
                    entry.body,
                ),
            )
            # Entries older than any sensible max-age only take room.
            db.execute("DELETE FROM cache_entries WHERE stored_at < ?", (entry.stored_at - keep_for,))

    def cache_drop(self, tags: list[str]) -> int:
        with self.immediate() as db:
            marks = ",".join("?" * len(tags))
            return db.execute(f"DELETE FROM cache_entries WHERE tag IN ({marks})", tags).rowcount

    def cache_clear(self) -> int:
        with self.immediate() as db:
            return db.execute("DELETE FROM cache_entries").rowcount

    # -- circuit breaker -------------------------------------------------------------------
    def breaker_get(self, host: str, db: sqlite3.Connection | None = None) -> BreakerRow | None:
        sql = (
            "SELECT host, state, failures, opened_at, probe_at, last_error FROM breaker_state"
            " WHERE host = ?"
        )
        row = db.execute(sql, (host,)).fetchone() if db is not None else self._read(sql, (host,))
        return BreakerRow(*row) if row is not None else None

    def breaker_all(self) -> list[BreakerRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT host, state, failures, opened_at, probe_at, last_error"
                " FROM breaker_state ORDER BY host"
            ).fetchall()
        return [BreakerRow(*row) for row in rows]

    @staticmethod
    def breaker_put(db: sqlite3.Connection, row: BreakerRow) -> None:
        db.execute(
            "INSERT OR REPLACE INTO breaker_state VALUES (?, ?, ?, ?, ?, ?)",
            (row.host, row.state, row.failures, row.opened_at, row.probe_at, row.last_error),
        )

    def breaker_reset(self, host: str | None = None) -> int:
        with self.immediate() as db:
            if host is None:
                return db.execute("DELETE FROM breaker_state").rowcount
            return db.execute("DELETE FROM breaker_state WHERE host = ?", (host,)).rowcount

    # -- rate limit ------------------------------------------------------------------------
    @staticmethod
    def bucket_tat(db: sqlite3.Connection, name: str) -> float | None:
        row = db.execute("SELECT tat FROM rate_limit_buckets WHERE name = ?", (name,)).fetchone()
        return float(row[0]) if row else None

    @staticmethod
    def bucket_put(db: sqlite3.Connection, name: str, tat: float) -> None:
        db.execute("INSERT OR REPLACE INTO rate_limit_buckets VALUES (?, ?)", (name, tat))

    # -- remembered keys -------------------------------------------------------------------
    def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        row = self._read(
            "SELECT fingerprint, announced FROM remembered_keys WHERE scope = ?", (scope,)
        )
        return (str(row[0]), bool(row[1])) if row else None

    def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        with self.immediate() as db:
            db.execute(
                "INSERT OR REPLACE INTO remembered_keys VALUES (?, ?, ?)",
                (scope, fingerprint, int(announced)),
            )
