"""GroupCommitWriter: log rows of many concurrent requests written in one transaction, off the
request path.

The gateway server hands each attempt's row to `add`, which only appends to a list; a writer
thread commits what has gathered every `window` seconds with the store's `write(records)` (the
same table and interface as one CLI call's row). sqlite3 releases the GIL while it writes, so the
event loop keeps serving meanwhile. The price is the durability bound: a `kill -9` loses at most
the rows added during the last window (`pending()` tells how many wait). A batch the store
refuses is written again row by row, so one bad row never holds the others back; a row that
still fails is kept in memory (bounded) and tried again at the next window and at `close`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from aigw.common.log_record import LogRecord

MAX_KEPT = 100_000  # rows refused by the store, kept for another try; beyond, the oldest go


class RowStore(Protocol):
    def write(self, records: Sequence[LogRecord]) -> None:
        """Store the rows in one transaction."""


class GroupCommitWriter:
    """Batches rows into one transaction per `window` seconds on a daemon thread."""

    def __init__(
        self,
        store: RowStore,
        *,
        window: float = 0.05,
        on_error: Callable[[str], None] = lambda message: None,
    ):
        self.store = store
        self.window = window
        self.on_error = on_error
        self.committed = 0  # rows written by this writer
        self.dropped = 0  # rows given up on (MAX_KEPT overflow)
        self.problem: str | None = None  # the last write error, for /readyz
        self._added: list[LogRecord] = []
        self._failed: list[LogRecord] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # the thread's commit and flush() never overlap
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="aigw-group-commit", daemon=True)
        self._thread.start()

    def add(self, record: LogRecord) -> None:
        """Queue one row; it is committed within `window` seconds."""
        with self._lock:
            self._added.append(record)

    def pending(self) -> int:
        """Rows added but not yet committed (what a `kill -9` now would lose)."""
        with self._lock:
            return len(self._added) + len(self._failed)

    def flush(self) -> None:
        """Commit everything added so far, now, on the caller's thread."""
        with self._write_lock:
            with self._lock:
                batch, self._added = self._failed + self._added, []
                self._failed = []
            self._commit(batch)

    def close(self, timeout: float = 10.0) -> int:
        """Stop the thread after a last commit; returns the rows that could not be written."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        self.flush()
        return self.pending()

    # -- parts -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.window)
            if self._closing:
                return
            self.flush()

    def _commit(self, batch: list[LogRecord]) -> None:
        if not batch:
            return
        try:
            self.store.write(batch)
        except Exception:
            self._one_by_one(batch)
        else:
            self.committed += len(batch)

    def _one_by_one(self, batch: list[LogRecord]) -> None:
        refused: list[LogRecord] = []
        for record in batch:
            try:
                self.store.write([record])
            except Exception as exc:
                refused.append(record)
                self.problem = f"{type(exc).__name__}: {exc}"
            else:
                self.committed += 1
        if refused:
            self.on_error(f"{len(refused)} log rows not written yet ({self.problem})")
            with self._lock:
                kept = refused + self._failed
                self.dropped += max(0, len(kept) - MAX_KEPT)
                self._failed = kept[-MAX_KEPT:]
