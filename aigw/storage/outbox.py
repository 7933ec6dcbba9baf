"""The logging layer's sink: every record on disk before the call returns, nothing lost.

A record is appended to this process's journal (storage/journal.py: one `os.write`, a few
microseconds) and from there moved into the local SQLite store in short transactions: by a
background thread about once a second while the process runs, whenever the process reads its
own logs (`commit()`), and at `close()`. A SQLite commit per record was measured first: ~50 µs
inside a call, a twentieth of a loopback call on its own. Moving rows inline, in the call that
found a second had passed, cost ~8 µs per row; on the mover thread most of that overlaps the
calls' waits for the network (sqlite3 releases the GIL while it works).

If the journal cannot be written (disk full, permissions), the record goes straight into the
store; if the store cannot take it either, it waits in memory and is tried again at close. A
journal the store cannot take at close stays on disk, and the next aigw to open the store
imports it. A record is never a reason for a call to fail.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigw.storage.attempts import attempt_record
from aigw.storage.base import LogRecord
from aigw.storage.journal import Journal, import_journal, retire, set_aside

if TYPE_CHECKING:
    from aigw.storage.sqlite import SQLiteRepository

IMPORT_EVERY_S = 1.0  # how stale another process's view of a long command's rows may get


class Outbox:
    def __init__(
        self,
        open_store: Callable[[], SQLiteRepository],
        journal_dir: Path,
        *,
        import_every: float = IMPORT_EVERY_S,
    ):
        self._open_store = open_store
        self.journal_dir = journal_dir
        self.journal: Journal | None = None
        self.unwritten: list[LogRecord | tuple[Any, ...]] = []  # taken by neither journal nor store
        self.problem: str | None = None  # the last reason a write or an import failed
        self.written = 0  # records on disk (journal or store)
        self.left_in_journal = 0  # rows the store could not take at close: imported later
        self._import_every = import_every
        # Appends and imports never wait for each other: an import takes only complete lines.
        self._append_lock = threading.Lock()  # calls may log from several threads (run --wait)
        self._import_lock = threading.Lock()
        self._mover: threading.Thread | None = None
        self._closing = threading.Event()
        self._journal_failed = False  # after a failed append the file may end mid-line

    def __call__(self, record: LogRecord | tuple[Any, ...]) -> None:
        """Keep a LogRecord, or an attempt's facts from the logging layer (storage/attempts)."""
        with self._append_lock:
            if not self._journal_failed:
                try:
                    if self.journal is None:
                        self.journal = Journal(self.journal_dir)
                    self.journal.append(record)
                except (TypeError, ValueError) as exc:  # not serialisable: nothing was written
                    self.problem = f"{type(exc).__name__}: {exc}"
                except Exception as exc:  # the file may end mid-line: never append again
                    self._journal_failed = True
                    self.problem = f"{type(exc).__name__}: {exc}"
                else:
                    self.written += 1
                    if self._mover is None:
                        self._mover = threading.Thread(
                            target=self._move_every_second, name="aigw-outbox", daemon=True
                        )
                        self._mover.start()
                    return
            self._write_now([record])  # straight into the store: never lost

    def commit(self) -> None:
        """Move the journal's rows into the store now: before this process reads its logs."""
        with self._import_lock:
            self._import()

    def close(self) -> int:
        """Move everything into the store and remove the journal; returns how many rows are
        left on disk for the next command because the store would not take them."""
        if self._mover is not None:
            self._closing.set()
            self._mover.join()
            self._mover, self._closing = None, threading.Event()  # a later row starts anew
        with self._append_lock, self._import_lock:
            if self.unwritten:
                failed, self.unwritten = self.unwritten, []
                self._write_now(failed)
            if self.journal is None:
                return self.left_in_journal
            journal, self.journal = self.journal, None
            journal.close()
            try:
                retire(self._open_store(), journal.path)
            except Exception as exc:
                self.problem = f"{type(exc).__name__}: {exc}"
                self.left_in_journal = self._count_lines(journal)
                with contextlib.suppress(OSError):  # else it waits for this process to end
                    set_aside(journal.path)
            return self.left_in_journal

    # -- parts -----------------------------------------------------------------------------
    def _move_every_second(self) -> None:
        while not self._closing.wait(self._import_every):
            self.commit()

    def _import(self) -> None:
        journal = self.journal
        if journal is None:
            return
        try:
            import_journal(self._open_store(), journal.path)
        except Exception as exc:  # the rows wait in the journal: the next try takes them
            self.problem = f"{type(exc).__name__}: {exc}"

    def _write_now(self, items: list[LogRecord | tuple[Any, ...]]) -> None:
        try:
            store = self._open_store()
            agents = store.agent_ids() if any(not isinstance(i, LogRecord) for i in items) else {}
            records = [
                i if isinstance(i, LogRecord) else attempt_record(i, agents.get) for i in items
            ]
            store.write(records)
        except Exception as exc:
            self.unwritten.extend(items)
            self.problem = f"{type(exc).__name__}: {exc}"
        else:
            self.written += len(items)

    @staticmethod
    def _count_lines(journal: Journal) -> int:
        try:
            return journal.path.read_bytes().count(b"\n")
        except OSError:
            return 0
