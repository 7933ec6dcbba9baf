"""Per-process journals: how a logged call's row reaches the disk in one system call.

Each aigw process appends its log rows (most often the facts of an attempt, from which the row
is made on import: storage/attempts.py), one JSON line each, to its own file under
AIGW_HOME/journal with a single O_APPEND `os.write`: from that moment a crash or a kill of
the process loses nothing (the bytes are the kernel's). That costs a few microseconds where a
SQLite commit costs ~50 in the middle of a call (bench/logging.py), which is what keeps the
logging layer under 5% of a loopback call.

Rows move from a journal into the SQLite store by `import_journal`: one short write
transaction that inserts the complete lines not yet imported *and* records how far the file
has been read (`journal_marks`), so an import interrupted anywhere neither loses nor repeats
a row, and two processes importing the same file take turns on SQLite's write lock. The
owner imports about once a second while it runs and at its end; the file of a process that
died is imported by the next aigw that opens the store (`import_orphans`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from aigw.storage.attempts import attempt_row, is_attempt
from aigw.storage.base import LogRecord
from aigw.storage.sqlite import INSERT_ROW, to_row

if TYPE_CHECKING:
    from aigw.storage.sqlite import SQLiteRepository

SUFFIX = ".facts"  # a journal its process may still append to
CLOSED = ".facts-closed"  # one its process closed without importing it all: anyone may
# The names of journals written before attempts' facts: they hold LogRecord rows only, and are
# still imported. (New journals are named apart, so an older aigw sharing AIGW_HOME leaves them
# alone rather than import lines it cannot read.)
OLD_SUFFIX, OLD_CLOSED = ".jsonl", ".closed"


def journal_dir(state_db_path: Path) -> Path:
    return state_db_path.with_name("journal")


class Journal:
    """This process's append-only file of log rows and attempts (named PID-RANDOM.facts).

    The process holds an exclusive flock on it while it lives: that, not the PID, tells other
    processes the owner is alive (PIDs are reused, and differ across PID namespaces).
    """

    def __init__(self, directory: Path):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{secrets.token_hex(8)}{SUFFIX}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def append(self, item: LogRecord | tuple[Any, ...]) -> None:
        """A LogRecord or an attempt's facts as one whole line, or OSError. After an OSError
        the file may end in a fragment: the caller must not append again (the next line would
        be glued to it)."""
        values = to_row(item) if isinstance(item, LogRecord) else item
        line = orjson.dumps(values, option=orjson.OPT_APPEND_NEWLINE)
        written = os.write(self._fd, line)
        if written < len(line):  # rare (a full disk): finish the line, or fail
            rest = memoryview(line)[written:]
            while rest:
                written = os.write(self._fd, rest)
                if written <= 0:
                    raise OSError(errno.ENOSPC, "short write to the journal")
                rest = rest[written:]

    def close(self) -> None:
        os.close(self._fd)


YIELD_EVERY = 128  # lines converted between two offers of the GIL (~0.5 ms of work)
_AGENTS = "SELECT openai_assistant_id, agent_id FROM agent_ids"


def _mark_name(path: Path) -> str:
    return path.name.split(".", 1)[0]  # PID-RANDOM, the same before and after closing


def import_journal(store: SQLiteRepository, path: Path) -> int:
    """Move the complete lines of `path` not yet imported into `store`; how many moved."""
    with store.transaction() as conn:
        mark = conn.execute("SELECT offset FROM journal_marks WHERE name = ?", (_mark_name(path),))
        found = mark.fetchone()
        offset = found[0] if found else 0
        try:
            with path.open("rb") as file:
                file.seek(offset)
                data = file.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1
        if end == 0:
            return 0
        rows = []
        agents: dict[str, str] | None = None
        for number, line in enumerate(data[:end].splitlines()):
            if number % YIELD_EVERY == YIELD_EVERY - 1:
                # Let a waiting thread have the GIL: on the mover thread, a call coming back
                # from the network would otherwise wait out the whole conversion.
                time.sleep(0)
            try:
                values = orjson.loads(line)
            except ValueError:  # a torn line from a full disk: skip it, keep the rest
                continue
            if not isinstance(values, list):  # not a line aigw wrote: skip it likewise
                continue
            if is_attempt(values):
                if agents is None:  # what the mirror recorded, as of this import
                    agents = dict(conn.execute(_AGENTS))
                try:
                    values = attempt_row(values, agents.get)
                except (TypeError, ValueError):  # not written by aigw: like a torn line
                    continue
            rows.append(tuple(values))
        conn.execute("SAVEPOINT batch")
        try:
            conn.executemany(INSERT_ROW, rows)
        except (sqlite3.Error, OverflowError, ValueError):
            # One row SQLite refuses must not hold back the others, or every later open:
            # undo the rows before it, then take them one by one.
            conn.execute("ROLLBACK TO batch")
            rows = [row for row in rows if _insert_one(conn, row)]
        conn.execute("RELEASE batch")
        conn.execute(
            "INSERT INTO journal_marks (name, offset) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET offset = excluded.offset",
            (_mark_name(path), offset + end),
        )
    return len(rows)


def _insert_one(conn: sqlite3.Connection, row: tuple[object, ...]) -> bool:
    try:
        conn.execute(INSERT_ROW, row)
    except (sqlite3.Error, OverflowError, ValueError):
        return False
    return True


def retire(store: SQLiteRepository, path: Path) -> int:
    """Import what is left of a finished journal, then delete the file and its mark."""
    moved = import_journal(store, path)
    path.unlink(missing_ok=True)
    with store.transaction() as conn:  # a mark left by a crash here is only a stale row
        conn.execute("DELETE FROM journal_marks WHERE name = ?", (_mark_name(path),))
    return moved


def import_orphans(store: SQLiteRepository, directory: Path) -> int:
    """Retire the journals of processes that are gone; how many rows moved."""
    if not directory.is_dir():
        return 0
    moved = 0
    for path in [*directory.glob(f"*{SUFFIX}"), *directory.glob(f"*{OLD_SUFFIX}")]:
        # A live owner (this process included) imports its own file: its last line may be
        # half-written, and it keeps appending to the file it has open. It holds the lock.
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            moved += retire(store, path)
        finally:
            os.close(fd)
    for path in [*directory.glob(f"*{CLOSED}"), *directory.glob(f"*{OLD_CLOSED}")]:
        moved += retire(store, path)
    return moved


def set_aside(path: Path) -> Path:
    """Mark a journal its process has closed, so that any process may import it."""
    closed = path.with_name(_mark_name(path) + CLOSED)
    path.rename(closed)
    return closed
