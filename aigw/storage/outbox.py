"""The logging layer's sink: every record committed to the local store the moment it is made.

One short WAL transaction per record (tens of microseconds, see bench/logging.py), so a crash
or a kill loses nothing already returned to the caller. (A writer thread that took the commit
off the call's path was tried and measured slower: on two cores its wake-ups and the GIL
hand-offs cost more than the commit itself.) If the local store cannot be opened or
written (disk full, permissions), records wait in memory and are tried again at close; what
still fails is appended to a JSON-lines spill file next to the database, which the next open
of the store imports. A record is never a reason for a call to fail.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aigw.storage.base import LogRecord

if TYPE_CHECKING:
    from aigw.storage.sqlite import SQLiteRepository


class Outbox:
    def __init__(self, open_store: Callable[[], SQLiteRepository], spill_path: Path):
        self._open_store = open_store
        self.spill_path = spill_path
        self.unwritten: list[LogRecord] = []
        self.problem: str | None = None  # the last reason a write failed
        self.written = 0
        self.spilled = 0  # records that went to the spill file at close
        self._agents: dict[str, str] | None = None

    def __call__(self, record: LogRecord) -> None:
        try:
            self._open_store().write([record])
        except Exception as exc:
            self.unwritten.append(record)
            self.problem = f"{type(exc).__name__}: {exc}"
        else:
            self.written += 1

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
        """Retry what failed, spill what still fails; returns how many went to the spill file."""
        if not self.unwritten:
            return 0
        try:
            self._open_store().write(self.unwritten)
            self.unwritten = []
            return 0
        except Exception as exc:
            self.problem = f"{type(exc).__name__}: {exc}"
        spill(self.spill_path, self.unwritten)
        self.spilled += len(self.unwritten)
        self.unwritten = []
        return self.spilled


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
