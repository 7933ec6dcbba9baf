"""The logging layer's sink: every record committed to the local store, off the call's path.

A call hands its record to the outbox and goes on; one writer thread commits it to the local
store in its own short WAL transaction (a backlog that built up meanwhile goes in one), most
often while the caller waits for its next response. That keeps the ~30 µs commit out of every
call's latency (bench/logging.py). Nothing is dropped on the way: `flush()` waits until what
was handed over is committed, `close()` (every command's end, and interpreter exit) drains
the queue, and the command line turns SIGTERM into a normal exit that closes. Only a SIGKILL
or a power cut in the instant between a call's end and its commit can lose that call's row.

If the local store cannot be opened or written (disk full, permissions), records wait in
memory and are tried again at close; what still fails is appended to a JSON-lines spill file
next to the database, which the next open of the store imports. A record is never a reason
for a call to fail.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aigw.storage.base import LogRecord

if TYPE_CHECKING:
    from aigw.storage.sqlite import SQLiteRepository


class Outbox:
    def __init__(
        self,
        open_store: Callable[[], SQLiteRepository],
        spill_path: Path,
        *,
        background: bool = True,
    ):
        self._open_store = open_store
        self.spill_path = spill_path
        self.background = background  # False: commit on the caller's thread, before returning
        self.unwritten: list[LogRecord] = []
        self.problem: str | None = None  # the last reason a write failed
        self.written = 0
        self.spilled = 0  # records that went to the spill file at close
        self._agents: dict[str, str] | None = None
        # Records and flush marks (Events), in the order they were handed over.
        self._queue: queue.SimpleQueue[LogRecord | threading.Event] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()  # starting the writer; `unwritten` across threads

    def __call__(self, record: LogRecord) -> None:
        if not self.background:
            self._write([record])
            return
        if self._writer is None:
            self._start_writer()
        self._queue.put(record)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record handed over so far is committed (or kept as unwritten)."""
        if self._writer is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def agent_for(self, assistant_id: str) -> str | None:
        """The agents.id the mirror recorded for this assistant (read once per process)."""
        if self._agents is None:
            try:
                self._agents = self._open_store().agent_ids()
            except Exception:
                self._agents = {}
        return self._agents.get(assistant_id)

    def remember_agent(self, assistant_id: str, agent_id: str) -> None:
        if self._agents is not None:
            self._agents[assistant_id] = agent_id

    def close(self) -> int:
        """Wait for the writer, retry what failed, spill what still fails; returns how many
        went to the spill file. Safe to call again (the writer stays, idle, for later calls)."""
        self.flush()
        with self._lock:
            failed, self.unwritten = self.unwritten, []
        if not failed:
            return 0
        try:
            self._open_store().write(failed)
            return 0
        except Exception as exc:
            self.problem = f"{type(exc).__name__}: {exc}"
        spill(self.spill_path, failed)
        self.spilled += len(failed)
        return self.spilled

    # -- the writer thread -----------------------------------------------------------------
    def _start_writer(self) -> None:
        with self._lock:
            if self._writer is not None:
                return
            self._writer = threading.Thread(target=self._run, name="aigw-log-writer", daemon=True)
            self._writer.start()
        # A daemon thread is stopped dead at interpreter exit; close() drains it first.
        atexit.register(self.close)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[LogRecord] = []
            marks: list[threading.Event] = []
            while True:  # take the backlog too: one transaction for what piled up
                if isinstance(item, threading.Event):
                    marks.append(item)
                else:
                    batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for mark in marks:
                mark.set()

    def _write(self, records: list[LogRecord]) -> None:
        try:
            self._open_store().write(records)
        except Exception as exc:
            with self._lock:
                self.unwritten.extend(records)
            self.problem = f"{type(exc).__name__}: {exc}"
        else:
            self.written += len(records)


def spill(path: Path, records: list[LogRecord]) -> None:
    """Append records as JSON lines (one write call, O_APPEND: safe with other processes)."""
    lines = "".join(
        json.dumps({**asdict(r), "created_at": r.created_at.isoformat()}) + "\n" for r in records
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


def import_spill(path: Path, store: SQLiteRepository) -> int:
    """Move a spill file's records into the store; only one process wins the rename."""
    if not path.exists():
        return 0
    claimed = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        os.rename(path, claimed)
    except OSError:
        return 0  # another process took it
    records = []
    for line in claimed.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            data["created_at"] = datetime.fromisoformat(data["created_at"])
            records.append(LogRecord(**data))
    try:
        store.write(records)
    except Exception:  # still unwritable: leave them spilled for a later open
        spill(path, records)
        claimed.unlink()
        return 0
    claimed.unlink()
    return len(records)
