"""Per-process journals: each row imported exactly once, whatever stops where."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from aigw.storage.attempts import Attempt, attempt_record
from aigw.storage.base import LogFilter, id_time
from aigw.storage.journal import Journal, import_journal, import_orphans, retire, set_aside
from aigw.storage.outbox import Outbox
from aigw.storage.sqlite import SQLiteRepository, to_row
from tests.helpers.rows import attempts, records


def ids(store: SQLiteRepository) -> list[str]:
    return [r.id for r in reversed(store.records(LogFilter(limit=None)))]


def store_and_outbox(tmp_path: Path, **options: float) -> tuple[SQLiteRepository, Outbox]:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    return store, Outbox(lambda: store, tmp_path / "journal", **options)


def ids_once_moved(store: SQLiteRepository) -> list[str]:
    """The store's ids as soon as the mover thread has put rows there (10 s at most)."""
    deadline = time.monotonic() + 10
    while not ids(store) and time.monotonic() < deadline:
        time.sleep(0.02)
    return ids(store)


def test_an_import_repeated_after_a_crash_moves_each_row_once(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    journal = Journal(tmp_path / "journal")
    batch = records(5)
    for record in batch[:3]:
        journal.append(record)
    assert import_journal(store, journal.path) == 3
    assert import_journal(store, journal.path) == 0  # as after a crash before the next step
    for record in batch[3:]:
        journal.append(record)
    journal.close()
    assert retire(store, journal.path) == 2
    assert retire(store, journal.path) == 0  # the file is gone; nothing twice
    assert ids(store) == [r.id for r in batch]
    assert store.conn.execute("SELECT count(*) FROM journal_marks").fetchone()[0] == 0
    store.close()


def test_a_line_without_its_newline_waits_and_a_torn_one_is_skipped(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    journal = Journal(tmp_path / "journal")
    first, second = records(2)
    journal.append(first)
    whole = journal.path.read_bytes()
    journal.append(second)
    line = journal.path.read_bytes()[len(whole) :]
    journal.path.write_bytes(whole + b'["torn\n' + line[:10])  # a torn line, a half one
    assert import_journal(store, journal.path) == 1
    with journal.path.open("ab") as file:
        file.write(line[10:])  # the half line completed
    assert import_journal(store, journal.path) == 1
    assert ids(store) == [first.id, second.id]
    store.close()


def test_the_outbox_imports_when_its_process_reads_and_at_close(tmp_path: Path) -> None:
    store, outbox = store_and_outbox(tmp_path, import_every=3600)
    batch = records(4)
    outbox(batch[0])
    outbox(batch[1])
    assert ids(store) == []  # on disk in the journal, not yet in the store
    outbox.commit()  # what AppContext.local_logs() does before a read
    assert ids(store) == [r.id for r in batch[:2]]
    outbox(batch[2])
    outbox(batch[3])
    assert outbox.close() == 0
    assert ids(store) == [r.id for r in batch]
    assert list((tmp_path / "journal").iterdir()) == []
    outbox(records(1)[0])  # a row after close starts a new journal, moved at the next close
    assert outbox.close() == 0
    assert len(ids(store)) == 5 and list((tmp_path / "journal").iterdir()) == []
    store.close()


def test_a_row_reaches_the_store_within_a_second_even_if_no_call_follows(
    tmp_path: Path,
) -> None:
    store, outbox = store_and_outbox(tmp_path, import_every=0.05)
    [record] = records(1)
    outbox(record)  # e.g. a run's stream opened by `runs create --wait`, then minutes of waiting
    assert outbox._mover is not None and outbox._mover.name == "aigw-outbox"
    assert ids_once_moved(store) == [record.id]
    outbox.close()
    store.close()


IMPORTER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from aigw.storage.journal import import_orphans
    from aigw.storage.sqlite import SQLiteRepository

    store = SQLiteRepository(Path(sys.argv[1]))
    print(import_orphans(store, Path(sys.argv[2])))
    store.close()
    """
)


def test_processes_importing_the_same_journals_at_once_move_each_row_once(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journal"
    written = []
    for _ in range(6):
        journal = Journal(directory)
        batch = records(200)
        for record in batch:
            journal.append(record)
        journal.close()
        set_aside(journal.path)  # closed: any process may import it
        written += [r.id for r in batch]
    db = tmp_path / "store.sqlite3"
    SQLiteRepository(db).close()
    importers = [
        subprocess.Popen(
            [sys.executable, "-c", IMPORTER, str(db), str(directory)],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        for _ in range(4)
    ]
    moved = sum(int(p.communicate(timeout=60)[0]) for p in importers)
    assert moved == len(written)
    store = SQLiteRepository(db)
    assert sorted(ids(store)) == sorted(written)
    assert import_orphans(store, directory) == 0 and list(directory.iterdir()) == []
    store.close()


def test_a_live_process_journal_is_left_to_its_owner(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    journal = Journal(tmp_path / "journal")  # this process: alive
    journal.append(records(1)[0])
    assert import_orphans(store, tmp_path / "journal") == 0
    assert journal.path.exists()
    journal.close()
    store.close()


def test_a_row_sqlite_refuses_does_not_hold_back_the_others(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    journal = Journal(tmp_path / "journal")
    good, bad, later = records(3)
    journal.append(good)
    bad.total_tokens = 2**63  # past SQLite's integers (the logging layer never makes one)
    journal.append(bad)
    journal.append(later)
    journal.close()
    assert retire(store, journal.path) == 2
    assert ids(store) == [good.id, later.id]
    store.close()


def test_after_a_failed_append_rows_go_straight_to_the_store(tmp_path: Path) -> None:
    store, outbox = store_and_outbox(tmp_path)
    batch = records(3)
    outbox(batch[0])
    assert outbox.journal is not None

    def full_disk(record: object) -> None:
        with outbox.journal.path.open("ab") as file:  # type: ignore[union-attr]
            file.write(b'["half a line')  # what a short write leaves
        raise OSError(28, "No space left on device")

    outbox.journal.append = full_disk  # type: ignore[method-assign]
    outbox(batch[1])
    outbox(batch[2])  # not glued to the fragment: the journal is no longer used
    assert outbox.written == 3 and "No space" in (outbox.problem or "")
    outbox.close()
    assert sorted(ids(store)) == sorted(r.id for r in batch)
    store.close()


def test_an_attempts_row_is_made_on_import_and_matches_its_facts(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    store.remember_agent("asst_1", "6f1c1b7e-0000-4000-8000-0000000000aa")
    journal = Journal(tmp_path / "journal")
    facts = attempts(2)
    for attempt in facts:
        journal.append(attempt)
    assert import_journal(store, journal.path) == 2
    rows = list(reversed(store.records(LogFilter(limit=None))))
    for row, attempt in zip(rows, facts, strict=True):
        a = Attempt(*attempt)
        assert row.created_at.timestamp() == pytest.approx(a.started_ns / 1e9)
        assert id_time(row.id) == pytest.approx(a.started_ns / 1e9, abs=0.001)  # UUIDv7, same time
        assert (row.endpoint, row.path, row.method) == (
            "/v1/threads/{thread_id}/runs",
            a.path,
            "POST",
        )
        assert (row.thread_id, row.run_id, row.model) == (a.path.split("/")[3], a.run_id, "gpt-4o")
        assert (row.call_id, row.attempt) == (row.id, 1)  # a call of this one attempt
        assert row.agent_id == "6f1c1b7e-0000-4000-8000-0000000000aa"  # as the mirror recorded
        # the same row as a LogRecord made straight from the facts, but for the fresh id
        made = attempt_record(attempt, {"asst_1": row.agent_id}.get)
        assert replace(made, id=row.id, call_id=row.call_id) == row
    store.close()


def test_with_the_journal_failing_an_attempt_goes_straight_to_the_store_whole(
    tmp_path: Path,
) -> None:
    store, outbox = store_and_outbox(tmp_path)
    outbox._journal_failed = True  # as after a failed append
    [attempt] = attempts(1)
    outbox(attempt)
    [row] = store.records(LogFilter(limit=None))
    assert (row.endpoint, row.method, row.status_code) == (
        "/v1/threads/{thread_id}/runs",
        "POST",
        200,
    )
    assert row.created_at.timestamp() == pytest.approx(Attempt(*attempt).started_ns / 1e9)
    outbox.close()
    store.close()


def test_a_line_that_is_not_a_row_is_skipped_and_the_rest_imported(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    facts = attempts(3)
    journal.append(facts[0])
    with journal.path.open("ab") as file:
        file.write(b'{"x": 1}\n7\n[1, 2]\n')  # JSON, but no row aigw wrote
    journal.append(facts[1])
    journal.append(facts[2])
    journal.close()
    closed = set_aside(journal.path)
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    assert import_orphans(store, tmp_path / "journal") == 3  # and the store opens fine
    assert not closed.exists()
    store.close()


def test_journals_of_the_format_before_attempts_are_still_imported(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = Journal(directory)
    assert journal.path.name.endswith(".facts")  # apart from what an older aigw would read
    journal.close()
    journal.path.unlink()
    batch = records(2)
    old_live = directory / "4242-00aa.jsonl"  # an older aigw's journals, left by a crash
    old_closed = directory / "4243-00bb.closed"
    for path, record in zip((old_live, old_closed), batch, strict=True):
        path.write_bytes(orjson.dumps(to_row(record)) + b"\n")
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    assert import_orphans(store, directory) == 2
    assert sorted(ids(store)) == sorted(r.id for r in batch)
    assert list(directory.iterdir()) == []
    store.close()


def test_a_second_close_leaves_the_mover_free_to_start_again(tmp_path: Path) -> None:
    store, outbox = store_and_outbox(tmp_path, import_every=0.05)
    outbox.close()
    outbox.close()  # as AppContext does (through the gateway, then itself)
    [attempt] = attempts(1)
    outbox(attempt)
    assert len(ids_once_moved(store)) == 1  # moved by the mover, not by a close
    outbox.close()
    store.close()


def test_an_error_text_with_a_lone_surrogate_is_kept_and_the_journal_stays_in_use(
    tmp_path: Path,
) -> None:
    from aigw.gateway.http import Request, Response
    from aigw.gateway.transports.logging import LoggingTransport

    store, outbox = store_and_outbox(tmp_path)
    layer = LoggingTransport(None, outbox, route="gateway")  # type: ignore[arg-type]
    body = b'{"error": {"message": "bad input \\ud800 here"}}'  # JSON's escape: a lone surrogate
    request = Request("POST", "http://gw.example/v1/threads", content=b"{}")
    response = Response(400, content=body, request=request)
    for _ in range(2):
        layer._emit(request, response, body, None, time.time_ns(), 1.0, None)
    assert not outbox._journal_failed and outbox.written == 2
    outbox.close()
    rows = store.records(LogFilter(limit=None))
    assert [r.error_message for r in rows] == ["bad input \ufffd here"] * 2
    store.close()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from aigw.storage.journal import Journal
    from tests.helpers.rows import records

    journal = Journal(Path(sys.argv[1]))
    journal.append(records(1)[0])
    print(journal.path, flush=True)
    time.sleep(60)
    """
)


def test_a_journal_is_imported_only_once_its_owner_has_let_go(tmp_path: Path) -> None:
    # Liveness is the owner's flock, not its PID (PIDs are reused, and differ across PID
    # namespaces, e.g. between containers sharing AIGW_HOME).
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "journal")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert owner.stdout is not None
    path = Path(owner.stdout.readline().strip())
    assert import_orphans(store, tmp_path / "journal") == 0 and path.exists()
    owner.kill()
    owner.wait()
    assert import_orphans(store, tmp_path / "journal") == 1 and not path.exists()
    store.close()


def test_a_row_that_cannot_be_built_is_kept_with_what_is_certain(tmp_path: Path) -> None:
    from aigw.gateway.http import Request, Response
    from aigw.gateway.transports.logging import LoggingTransport

    store, outbox = store_and_outbox(tmp_path)
    layer = LoggingTransport(None, outbox, route="gateway")  # type: ignore[arg-type]

    def broken(*args: object) -> tuple[object, ...]:
        raise RuntimeError("surprise")

    layer._attempt = broken  # type: ignore[method-assign]
    request = Request("GET", "http://gw.example/v1/threads/thread_9/runs/run_1")
    started = time.time_ns()
    layer._emit(request, Response(200, request=request), b"{}", None, started, 2.5, None)
    outbox.close()
    [row] = store.records(LogFilter(limit=None))
    assert (row.endpoint, row.thread_id, row.run_id) == (
        "/v1/threads/{thread_id}/runs/{run_id}",
        "thread_9",
        "run_1",
    )
    assert (row.status_code, row.latency_ms, row.route) == (200, 2.5, "gateway")
    assert row.error_message == "aigw could not build this log row: RuntimeError"
    store.close()
