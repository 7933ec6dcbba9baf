"""SQLiteState: the shared state (aigw/common/state.py) in the local SQLite store.

Every aigw process on the machine shares it through the SQLite file `settings.state_db_path`
(the same file and connection rules as the call logs, aigw/storage/sqlite.py; the tables are
migration 2 in sqlite_migrations.py). Each read-modify-write is one short
`BEGIN IMMEDIATE` transaction: the writer lock is taken before reading, so two processes
can never both decide from the same stale row (e.g. both claim the half-open probe).
Nothing heavy is imported: a refused call must stay fast (no SDK).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from aigw.common.state import (
    CLOSED,
    Admission,
    BreakerRow,
    BreakerRule,
    CacheEntry,
    Gcra,
    SharedState,
    admit_step,
    claim_step,
    gcra_step,
    record_step,
)
from aigw.storage.sqlite import immediate, open_local

_BREAKER_COLUMNS = "host, state, failures, opened_at, probe_at, last_error"
_CACHE_ENTRY = (
    "SELECT key, tag, url, stored_at, status, headers, body FROM cache_entries WHERE key = ?"
)


class SQLiteState(SharedState):
    """One connection per process, used under a lock (layers may run on several threads)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.RLock()
        self._conn = open_local(path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def immediate(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction that holds the writer lock from its first read."""
        with self._lock, immediate(self._conn) as conn:
            yield conn

    def _read(self, sql: str, args: tuple[object, ...]) -> Any:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    # -- cache -----------------------------------------------------------------------------
    def cache_get(self, key: str) -> CacheEntry | None:
        return _entry(self._read(_CACHE_ENTRY, (key,)))

    def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        with self.immediate() as db:
            db.execute(
                "INSERT OR REPLACE INTO cache_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.key,
                    entry.tag,
                    entry.url,
                    entry.stored_at,
                    entry.status,
                    orjson.dumps(entry.headers).decode(),
                    entry.body,
                ),
            )
            # Entries older than any sensible max-age only take room.
            db.execute(
                "DELETE FROM cache_entries WHERE stored_at < ?", (entry.stored_at - keep_for,)
            )

    def cache_drop(self, tags: list[str]) -> int:
        marks = ",".join("?" * len(tags))
        # Most writes find nothing cached under their tags: a read, no writer lock. An entry
        # stored just after it is no staler than one stored just after the delete.
        found = self._read(f"SELECT 1 FROM cache_entries WHERE tag IN ({marks}) LIMIT 1", (*tags,))
        if found is None:
            return 0
        with self.immediate() as db:
            return db.execute(f"DELETE FROM cache_entries WHERE tag IN ({marks})", tags).rowcount

    # -- rate limit ------------------------------------------------------------------------
    def rate_take(self, name: str, rule: Gcra, now: float, *, reserve: bool) -> float:
        with self.immediate() as db:
            delay, tat = gcra_step(_tat(db, name), now, rule, reserve=reserve)
            if tat is not None:
                _put_tat(db, name, tat)
            return delay

    def admit(self, buckets: Sequence[tuple[str, Gcra]], now: float, key: str | None) -> Admission:
        """The server's `admit` (aigw/common/state.py), in one transaction."""
        return self.take_ahead(buckets, [1] * len(buckets), now, key)[0]

    def take_ahead(
        self,
        buckets: Sequence[tuple[str, Gcra]],
        wanted: Sequence[int],
        now: float,
        key: str | None,
    ) -> tuple[Admission, list[int]]:
        """`admit`, taking up to `wanted[i]` slots of bucket i (as many as are free now): the
        admission, and how many each bucket gave."""
        if not buckets:
            return Admission(entry=None if key is None else self.cache_get(key)), []
        with self.immediate() as db:
            tats = [_tat(db, name) for name, _ in buckets]
            rules = [rule for _, rule in buckets]
            wait, refused_by, new_tats, counts = admit_step(tats, now, rules, wanted)
            if refused_by is not None:
                return Admission(wait, refused_by), []
            for (name, _), tat in zip(buckets, new_tats, strict=True):
                _put_tat(db, name, tat)
            if key is None:
                return Admission(), counts
            return Admission(entry=_entry(db.execute(_CACHE_ENTRY, (key,)).fetchone())), counts

    def rate_pause(self, name: str, until: float, now: float) -> None:
        with self.immediate() as db:
            if until > (_tat(db, name) or now):
                _put_tat(db, name, until)

    def rate_reset(self) -> int:
        """Forget every rate-limit bucket, and with it any pause an upstream's 429 asked for."""
        with self.immediate() as db:
            return db.execute("DELETE FROM rate_limit_buckets").rowcount

    # -- circuit breaker -------------------------------------------------------------------
    def breaker_get(self, host: str) -> BreakerRow | None:
        with self._lock:
            return _breaker(self._conn, host)

    def breaker_all(self) -> list[BreakerRow]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_BREAKER_COLUMNS} FROM breaker_state ORDER BY host"
            ).fetchall()
        return [BreakerRow(*row) for row in rows]

    def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        row = self.breaker_get(host)
        if row is None or row.state == CLOSED:
            return None  # the common case: a read, no writer lock
        with self.immediate() as db:
            refusing, new = claim_step(_breaker(db, host), now, rule)
            if new is not None:
                _put_breaker(db, new)
            return refusing

    def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        if (
            record_step(host, self.breaker_get(host), now, rule, failure=failure, error=error)
            is None
        ):
            return  # the common case writes nothing
        with self.immediate() as db:
            new = record_step(host, _breaker(db, host), now, rule, failure=failure, error=error)
            if new is not None:
                _put_breaker(db, new)

    def breaker_reset(self, host: str | None = None) -> int:
        with self.immediate() as db:
            if host is None:
                return db.execute("DELETE FROM breaker_state").rowcount
            return db.execute("DELETE FROM breaker_state WHERE host = ?", (host,)).rowcount

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

    # -- the gateway's idempotency keys ---------------------------------------------------
    def idempotency_key(
        self, fingerprint: str, proposed: str, now: float, *, retry: bool, keep_for: float
    ) -> str:
        with self.immediate() as db:
            if retry:
                row = db.execute(
                    "SELECT key FROM idempotency_keys WHERE fingerprint = ? AND expires_at > ?",
                    (fingerprint, now),
                ).fetchone()
                if row is not None:
                    return str(row[0])
            db.execute(
                "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?)",
                (fingerprint, proposed, now + keep_for),
            )
            db.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))
            return proposed

    def idempotency_keep(self, kept: list[tuple[str, str, float]], now: float) -> None:
        """Remember first tries' keys, (fingerprint, key, expires_at) each, in one transaction,
        and forget the expired ones."""
        with self.immediate() as db:
            db.executemany("INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?)", kept)
            db.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))

    # -- the store itself ------------------------------------------------------------------
    def writable(self) -> str | None:
        """None when the store takes writes, else why not (for /readyz)."""
        try:
            with self.immediate():
                pass
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


def _entry(row: Any) -> CacheEntry | None:
    if row is None:
        return None
    k, tag, url, stored_at, status, headers, body = row
    return CacheEntry(
        k, tag, url, stored_at, status, [(n, v) for n, v in orjson.loads(headers)], body
    )


def _tat(db: sqlite3.Connection, name: str) -> float | None:
    row = db.execute("SELECT tat FROM rate_limit_buckets WHERE name = ?", (name,)).fetchone()
    return float(row[0]) if row else None


def _put_tat(db: sqlite3.Connection, name: str, tat: float) -> None:
    db.execute("INSERT OR REPLACE INTO rate_limit_buckets VALUES (?, ?)", (name, tat))


def _breaker(db: sqlite3.Connection, host: str) -> BreakerRow | None:
    sql = f"SELECT {_BREAKER_COLUMNS} FROM breaker_state WHERE host = ?"
    row = db.execute(sql, (host,)).fetchone()
    return BreakerRow(*row) if row is not None else None


def _put_breaker(db: sqlite3.Connection, row: BreakerRow) -> None:
    db.execute(
        "INSERT OR REPLACE INTO breaker_state VALUES (?, ?, ?, ?, ?, ?)",
        (row.host, row.state, row.failures, row.opened_at, row.probe_at, row.last_error),
    )
