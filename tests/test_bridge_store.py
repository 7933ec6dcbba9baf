"""The bridge's store: one conformance suite, run on the SQLite file and on the real Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from aigw.bridge.postgres_store import PostgresBridgeStore
from aigw.bridge.sqlite_store import SqliteBridgeStore
from aigw.bridge.store import BridgeStore, Expect, IdleThread, ThreadBusy
from aigw.errors import AigwError, ExitCode
from tests.helpers.sandbox import ManualClock

T = TypeVar("T")


class Sync:
    """A store driven from a plain test: each call runs on one event loop kept for the test."""

    def __init__(self, store: BridgeStore):
        self.store = store
        self.loop = asyncio.new_event_loop()
        self.do(store.open())

    def do(self, coroutine: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.do(self.store.close())
        self.loop.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Sync]:
    if request.param == "sqlite":
        backend: BridgeStore = SqliteBridgeStore(tmp_path / "bridge.db", lease_s=60, clock=clock)
    else:
        url = request.getfixturevalue("migrated_db")
        backend = PostgresBridgeStore(url, lease_s=60, clock=clock)
    sync = Sync(backend)
    yield sync
    sync.close()


def thread(thread_id: str = "thread_1") -> dict[str, Any]:
    return {"id": thread_id, "object": "thread", "metadata": {}}


def run(run_id: str, status: str = "queued", thread_id: str = "thread_1") -> dict[str, Any]:
    return {"id": run_id, "object": "thread.run", "thread_id": thread_id, "status": status}


def message(message_id: str, run_id: str | None = None) -> dict[str, Any]:
    return {"id": message_id, "thread_id": "thread_1", "run_id": run_id, "role": "user"}


def ids(objects: list[dict[str, Any]]) -> list[str]:
    return [o["id"] for o in objects]


def test_objects_come_back_whole_and_in_creation_order_even_after_updates(store: Sync) -> None:
    s = store.store
    store.do(
        s.write(
            [("thread", thread()), ("message", message("msg_b")), ("message", message("msg_a"))]
        )
    )
    store.do(s.write([("message", {**message("msg_b"), "metadata": {"k": "v"}})]))
    assert ids(store.do(s.objects("message", thread_id="thread_1"))) == ["msg_b", "msg_a"]
    assert store.do(s.get("message", "msg_b"))["metadata"] == {"k": "v"}  # type: ignore[index]
    assert store.do(s.get("message", "msg_x")) is None


def test_the_database_allows_one_active_run_per_thread(store: Sync) -> None:
    s = store.store
    store.do(s.write([("thread", thread()), ("run", run("run_1"))]))
    with pytest.raises(ThreadBusy):
        store.do(s.write([("run", run("run_2")), ("message", message("msg_1"))]))
    assert store.do(s.get("message", "msg_1")) is None  # all or nothing
    store.do(s.write([("run", run("run_1", "completed"))]))
    store.do(s.write([("run", run("run_2"))]))
    assert ids(store.do(s.objects("run", thread_id="thread_1"))) == ["run_1", "run_2"]


def test_guards_hold_writes_back(store: Sync) -> None:
    s = store.store
    store.do(s.write([("thread", thread()), ("run", run("run_1", "requires_action"))]))
    with pytest.raises(ThreadBusy):
        store.do(s.write([("message", message("msg_1"))], IdleThread("thread_1")))
    wrote = store.do(
        s.write([("run", run("run_1", "completed"))], Expect("run_1", ("in_progress",)))
    )
    assert not wrote and store.do(s.get("run", "run_1"))["status"] == "requires_action"  # type: ignore[index]
    assert store.do(
        s.write([("run", run("run_1", "cancelling"))], Expect("run_1", ("requires_action",)))
    )
    store.do(s.write([("run", run("run_1", "cancelled"))]))
    assert store.do(s.write([("message", message("msg_1"))], IdleThread("thread_1")))


def test_deleting_a_thread_deletes_its_messages_runs_and_steps(store: Sync) -> None:
    s = store.store
    step = {"id": "step_1", "thread_id": "thread_1", "run_id": "run_1"}
    store.do(
        s.write(
            [
                ("thread", thread()),
                ("message", message("msg_1")),
                ("run", run("run_1")),
                ("step", step),
            ]
        )
    )
    assert store.do(s.delete("thread", "thread_1"))
    for kind, object_id in [("message", "msg_1"), ("run", "run_1"), ("step", "step_1")]:
        assert store.do(s.get(kind, object_id)) is None  # type: ignore[arg-type]
    assert not store.do(s.delete("thread", "thread_1"))


def test_a_run_in_flight_is_stale_once_its_lease_runs_out(store: Sync, clock: ManualClock) -> None:
    s = store.store
    store.do(s.write([("thread", thread()), ("thread", thread("thread_2"))]))
    store.do(
        s.write(
            [
                ("run", run("run_1", "in_progress")),
                ("run", run("run_2", "requires_action", "thread_2")),
            ]
        )
    )
    assert store.do(s.stale_runs(clock(), all_in_flight=False)) == []
    assert ids(store.do(s.stale_runs(clock(), all_in_flight=True))) == ["run_1"]
    clock.advance(61)
    assert ids(store.do(s.stale_runs(clock(), all_in_flight=False))) == ["run_1"]


@pytest.mark.postgres
def test_postgres_keeps_assistants_in_the_seeds_agents_table(migrated_db: str) -> None:
    sync = Sync(PostgresBridgeStore(migrated_db))
    s = sync.store
    assistant = {"id": "asst_1", "name": None, "instructions": "Be kind.", "model": "gpt-4o"}
    sync.do(s.write([("assistant", assistant)]))
    sync.do(s.write([("assistant", {**assistant, "name": "Support"})]))

    def agents() -> list[tuple[Any, ...]]:
        with psycopg.connect(migrated_db) as conn:
            return conn.execute(
                "SELECT a.name, a.instructions, a.model, b.id FROM agents a "
                "LEFT JOIN bridge_assistants b ON b.agent_id = a.id "
                "WHERE a.openai_assistant_id = 'asst_1'"
            ).fetchall()

    assert agents() == [("Support", "Be kind.", "gpt-4o", "asst_1")]
    sync.do(s.delete("assistant", "asst_1"))
    assert agents() == []
    sync.close()


@pytest.mark.postgres
def test_bridge_tables_are_closed_to_the_api_roles(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        rows = conn.execute(
            "SELECT tablename, rowsecurity FROM pg_tables "
            "WHERE tablename LIKE 'bridge_%' ORDER BY 1"
        ).fetchall()
        grants = conn.execute(
            "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
            "WHERE table_name LIKE 'bridge_%' ORDER BY 1"
        ).fetchall()
        policies = conn.execute(
            "SELECT tablename, policyname, roles::text FROM pg_policies "
            "WHERE tablename LIKE 'bridge_%' ORDER BY 1"
        ).fetchall()
    tables = [
        "bridge_assistants",
        "bridge_messages",
        "bridge_run_steps",
        "bridge_runs",
        "bridge_threads",
    ]
    assert rows == [(t, True) for t in tables]
    assert ("anon",) not in grants and ("authenticated",) not in grants
    assert policies == [(t, f"{t}_service_role_all", "{service_role}") for t in tables]


@pytest.mark.postgres
def test_a_database_without_the_bridge_tables_is_a_clear_error(fresh_db: str) -> None:
    store = PostgresBridgeStore(fresh_db)
    with pytest.raises(AigwError, match="no Assistants bridge tables") as caught:
        asyncio.run(store.open())
    assert caught.value.code == ExitCode.DATABASE and "aigw migrate" in (caught.value.hint or "")


def test_an_unreachable_database_is_a_clear_error_without_its_password() -> None:
    store = PostgresBridgeStore("postgresql://postgres:hunter2@127.0.0.1:1/x")
    with pytest.raises(
        AigwError, match=r"cannot reach its database at postgres@127\.0\.0\.1:1/x"
    ) as caught:
        asyncio.run(store.open())
    assert "hunter2" not in str(caught.value)
