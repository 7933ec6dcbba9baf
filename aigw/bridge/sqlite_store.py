"""The bridge's state in one SQLite file (the default): WAL, one writer, calls on the loop.

SQLite answers a local write in tens of microseconds, less than a hop to a worker thread,
so the async methods call it directly. The file belongs to one gateway process: at start,
every run still in flight was interrupted (see BridgeService.recover).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aigw.bridge.store import (
    ACTIVE_SQL,
    TABLES,
    Expect,
    Guard,
    IdleThread,
    Kind,
    SqlReads,
    ThreadBusy,
    row_values,
    upsert_sql,
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS bridge_assistants (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bridge_threads (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bridge_messages (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  thread_id TEXT NOT NULL REFERENCES bridge_threads(id) ON DELETE CASCADE,
  run_id TEXT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bridge_runs (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  thread_id TEXT NOT NULL REFERENCES bridge_threads(id) ON DELETE CASCADE,
  status TEXT NOT NULL, lease_until REAL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bridge_run_steps (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  thread_id TEXT NOT NULL REFERENCES bridge_threads(id) ON DELETE CASCADE,
  run_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS bridge_runs_one_active_per_thread ON bridge_runs (thread_id)
  WHERE status IN ({ACTIVE_SQL});
CREATE INDEX IF NOT EXISTS bridge_messages_thread_id_seq_idx ON bridge_messages (thread_id, seq);
CREATE INDEX IF NOT EXISTS bridge_runs_thread_id_seq_idx ON bridge_runs (thread_id, seq);
CREATE INDEX IF NOT EXISTS bridge_run_steps_run_id_seq_idx ON bridge_run_steps (run_id, seq);
CREATE INDEX IF NOT EXISTS bridge_run_steps_thread_id_idx ON bridge_run_steps (thread_id);
"""


class SqliteBridgeStore(SqlReads):
    def __init__(
        self, path: Path | str, *, lease_s: float = 300.0, clock: Callable[[], float] = time.time
    ):
        self.path = Path(path)
        self.lease_s = lease_s
        self.clock = clock
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash, WAL-checkpointed
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "open() first"
        return self._db

    async def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, params).fetchall()

    async def write(
        self, objects: Sequence[tuple[Kind, dict[str, Any]]], guard: Guard = None
    ) -> bool:
        db, now = self.db, self.clock()
        db.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(guard, Expect):
                row = db.execute(
                    "SELECT status FROM bridge_runs WHERE id = ?", (guard.run_id,)
                ).fetchone()
                if row is None or row[0] not in guard.statuses:
                    db.execute("ROLLBACK")
                    return False
            elif (
                isinstance(guard, IdleThread)
                and db.execute(
                    f"SELECT 1 FROM bridge_runs WHERE thread_id = ? AND status IN ({ACTIVE_SQL})",
                    (guard.thread_id,),
                ).fetchone()
            ):
                raise ThreadBusy(guard.thread_id)
            for kind, body in objects:
                values = row_values(kind, body, now, self.lease_s)
                try:
                    db.execute(upsert_sql(kind, "?"), values)
                except sqlite3.IntegrityError as error:
                    if kind == "run" and "bridge_runs.thread_id" in str(error):
                        raise ThreadBusy(body["thread_id"]) from None
                    raise
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return True

    async def delete(self, kind: Kind, object_id: str) -> bool:
        cursor = self.db.execute(f"DELETE FROM {TABLES[kind].name} WHERE id = ?", (object_id,))
        return cursor.rowcount > 0
