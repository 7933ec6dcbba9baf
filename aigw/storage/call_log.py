"""CallLog: the logging layer's sink, which has each call's row in the store before it returns."""

from __future__ import annotations

import threading
from collections.abc import Callable

from aigw.common.log_record import LogRecord
from aigw.storage.base import Repository, RowsNotWritten


class CallLog:
    """Writes each record through `Repository.write`, in its own short transaction.

    A record the store will not take never fails the call nor holds back the others: it waits
    in memory, is tried again at `close()`, and what still fails is counted in `unwritten`.
    """

    def __init__(self, open_store: Callable[[], Repository]):
        self._open_store = open_store
        self._store: Repository | None = None  # opened by the first record, then kept
        self._lock = threading.Lock()  # calls may log from several threads
        self.unwritten: list[LogRecord] = []
        self.problem: str | None = None  # the last reason a write failed
        self.written = 0  # records stored
        self.watch: list[str] | None = None  # when a list: the ids of the records logged

    def __call__(self, record: LogRecord) -> None:
        if self.watch is not None:
            self.watch.append(record.id)
        self._write([record])

    def close(self) -> int:
        """Try the kept records once more; returns how many could still not be saved."""
        with self._lock:
            kept, self.unwritten = self.unwritten, []
        if kept:
            self._write(kept)
        return len(self.unwritten)

    def _write(self, records: list[LogRecord]) -> None:
        try:
            store = self._store
            if store is None:
                store = self._store = self._open_store()
            store.write(records)
        except RowsNotWritten as exc:
            self._keep(exc.records, exc)
            self.written += len(records) - len(exc.records)
        except Exception as exc:
            self._keep(records, exc)
        else:
            self.written += len(records)

    def _keep(self, records: list[LogRecord], exc: Exception) -> None:
        with self._lock:
            self.unwritten.extend(records)
            self.problem = f"{type(exc).__name__}: {exc}"
