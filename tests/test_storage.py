"""The Repository conformance suite, run against every backend (SQLite file, real Postgres),
plus the Postgres mirror writes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from aigw.common.log_record import LogRecord, id_time, new_id
from aigw.storage.base import LogFilter, Repository
from aigw.storage.postgres import PostgresRepository
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.rows import records

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    if request.param == "sqlite":
        store: Repository = SQLiteRepository(tmp_path / "store.sqlite3")
    else:
        store = PostgresRepository(request.getfixturevalue("migrated_db"))
    yield store
    store.close()


def full_record() -> LogRecord:
    return LogRecord(
        endpoint="/v1/threads/{thread_id}/runs/{run_id}",
        method="GET",
        created_at=T0 + timedelta(microseconds=123456),
        status_code=200,
        latency_ms=42.0,
        request_payload={"a": [1, 2, {"b": None}], "text": "olá"},
        response_payload={"object": "thread.run", "usage": {"total_tokens": 30}},
        error_message=None,
        path="/v1/threads/thread_1/runs/run_1",
        request_id="req_123",
        call_id=str(uuid.uuid4()),
        attempt=2,
        route="direct",
        cache_status="miss",
        thread_id="thread_1",
        run_id="run_1",
        assistant_id="asst_1",
        model="gpt-4o",
        prompt_tokens=10,
        completion_tokens=20,
        total_tokens=30,
        source="aigw",
    )


def test_a_written_record_reads_back_with_every_column(repo: Repository) -> None:
    record = full_record()
    repo.write([record])
    assert repo.get(record.id) == record
    assert repo.records(LogFilter()) == [record]


def test_writing_the_same_record_twice_keeps_one_row_remotely(migrated_db: str) -> None:
    # What sync relies on. The local store takes each record once (its writers never repeat
    # one), so it skips the check and the index it would need.
    repo = PostgresRepository(migrated_db)
    batch = records(5)
    repo.write(batch)
    repo.write(batch)
    repo.write(batch[:2])
    assert len(repo.records(LogFilter(limit=None))) == 5
    repo.close()


def test_an_unknown_id_reads_as_none(repo: Repository) -> None:
    assert repo.get(str(uuid.uuid4())) is None
    assert repo.get("not-a-uuid") is None


def test_records_come_newest_first_within_the_window_and_limit(repo: Repository) -> None:
    batch = records(10, start=T0)
    repo.write(batch)
    window = LogFilter(since=T0 + timedelta(milliseconds=2), until=T0 + timedelta(milliseconds=8))
    assert [r.id for r in repo.records(window)] == [r.id for r in reversed(batch[2:8])]
    assert [r.id for r in repo.records(LogFilter(limit=3))] == [r.id for r in batch[:-4:-1]]


def test_records_filter_by_endpoint_method_status_and_agent(repo: Repository) -> None:
    agent = str(uuid.uuid4())
    ok = records(3, start=T0, endpoint="/v1/assistants", method="GET")
    limited = records(2, start=T0 + timedelta(seconds=1), status_code=429)
    broken = records(2, start=T0 + timedelta(seconds=2), status_code=503, assistant_id="asst_x")
    network = records(1, start=T0 + timedelta(seconds=3), status_code=None)
    repo.write([*ok, *limited, *broken, *network])

    def ids(**where: object) -> set[str]:
        return {r.id for r in repo.records(LogFilter(limit=None, **where))}  # type: ignore[arg-type]

    assert ids(endpoint="/v1/assistants") == {r.id for r in ok}
    assert ids(method="get") == {r.id for r in ok}
    assert ids(status="2xx") == {r.id for r in ok}
    assert ids(status="4xx") == ids(status="429") == {r.id for r in limited}
    assert ids(status="5xx") == ids(agent="asst_x") == {r.id for r in broken}
    assert ids(status="network") == {r.id for r in network}
    assert ids(agent=agent) == set()


def test_prune_deletes_only_rows_older_than_the_cutoff(repo: Repository) -> None:
    batch = records(6, start=T0)
    repo.write(batch)
    assert repo.prune(T0 + timedelta(milliseconds=4)) == 4
    assert {r.id for r in repo.records(LogFilter())} == {r.id for r in batch[4:]}


# -- the outbox side: pending rows (remote stores have none) -------------------------------


def test_local_rows_stay_pending_until_marked_synced(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    batch = records(5)
    store.write(batch)
    first = store.pending(3)
    assert [r.id for r in first.records] == [r.id for r in batch[:3]]
    store.mark_synced(first.last)
    assert store.pending_count() == 2
    assert [r.id for r in store.pending(10).records] == [r.id for r in batch[3:]]
    store.mark_synced(first.last - 1)  # a slower sync finishing late never moves it back
    assert store.pending_count() == 2
    store.close()


def test_pending_follows_write_order_not_timestamps(tmp_path: Path) -> None:
    # A long call started earlier is committed later: it must not be skipped by a cursor
    # that has moved past rows with later timestamps.
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    late, early = records(1, start=T0 + timedelta(seconds=5)), records(1, start=T0)
    store.write(late)
    store.mark_synced(store.pending(10).last)
    store.write(early)
    assert [r.id for r in store.pending(10).records] == [early[0].id]
    first = store.pending(1)
    store.write(records(2, start=T0 + timedelta(seconds=9)))
    assert len(store.pending(10, after=first.last).records) == 2
    store.close()


def test_pruning_the_newest_rows_never_hides_later_ones_from_sync(tmp_path: Path) -> None:
    # A new row's seq is the largest + 1; prune must not leave the cursor above it.
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    store.write(records(3, start=T0))
    store.mark_synced(store.pending(10).last)
    assert store.prune(T0 + timedelta(days=1)) == 3
    fresh = records(2, start=T0 + timedelta(days=2))
    store.write(fresh)
    assert [r.id for r in store.pending(10).records] == [r.id for r in fresh]
    store.close()


def test_a_row_is_found_by_its_uuid7_without_an_id_index(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    batch = records(50, start=T0)
    odd = LogRecord(endpoint="/v1/assistants", method="GET", id=str(uuid.uuid4()))
    store.write([*batch, odd])
    assert id_time(batch[7].id) == pytest.approx(batch[7].created_at.timestamp(), abs=0.001)
    assert store.get(batch[7].id) == batch[7]
    assert store.get(odd.id) == odd  # an id of another kind: found the slow way
    plan = " ".join(
        str(row[-1])
        for row in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM ai_gateway_logs "
            "WHERE created_at BETWEEN ? AND ? AND id = ?",
            (0, 1, batch[7].id),
        )
    )
    assert "ai_gateway_logs_created_at" in plan
    store.close()


def test_new_ids_are_uuid7_in_time_order() -> None:
    ids = [new_id(1_700_000_000_000 + i) for i in range(100)]
    assert ids == sorted(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert all(uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    assert id_time(ids[0]) == 1_700_000_000.0
    assert id_time(str(uuid.uuid4())) is None and id_time("nope") is None
    assert len(set(new_id(5) for _ in range(1000))) == 1000  # same millisecond, still unique


def test_a_remote_store_has_nothing_pending(migrated_db: str) -> None:
    store = PostgresRepository(migrated_db)
    store.write(records(3))
    assert store.pending(10).records == [] and store.pending_count() == 0
    store.close()


def test_postgres_keeps_rows_whose_user_or_agent_is_unknown(
    migrated_db: str,
    auth_user: str,
) -> None:
    store = PostgresRepository(migrated_db)
    agent_id = store.upsert_agent(
        openai_assistant_id="asst_known", name="Known", instructions=None, model="gpt-4o"
    )
    kept = records(1, user_id=auth_user, agent_id=agent_id)
    stranger = records(1, user_id=str(uuid.uuid4()), agent_id=str(uuid.uuid4()))
    not_uuids = records(1, user_id="alice", agent_id="agent-7")
    by_assistant = records(1, assistant_id="asst_known")
    store.write([*kept, *stranger, *not_uuids, *by_assistant])
    got = {r.id: r for r in store.records(LogFilter())}
    assert len(got) == 4
    assert (got[kept[0].id].user_id, got[kept[0].id].agent_id) == (auth_user, agent_id)
    assert (got[stranger[0].id].user_id, got[stranger[0].id].agent_id) == (None, None)
    assert (got[not_uuids[0].id].user_id, got[not_uuids[0].id].agent_id) == (None, None)
    assert got[by_assistant[0].id].agent_id == agent_id
    store.close()


def test_postgres_rounds_latency_and_survives_nul_characters(migrated_db: str) -> None:
    store = PostgresRepository(migrated_db)
    record = LogRecord(
        endpoint="/v1/assistants",
        method="POST",
        latency_ms=12.6,
        error_message="bad\x00byte",
        request_payload={"k\x00": "v\x00"},
    )
    store.write([record])
    got = store.get(record.id)
    assert got is not None
    assert got.latency_ms == 13.0
    assert got.error_message == "bad\ufffdbyte"
    assert got.request_payload == {"k\ufffd": "v\ufffd"}
    store.close()


# -- the mirror (Postgres) --------------------------------------------------------------


def test_the_mirror_upserts_agents_and_finds_them_by_id_name_or_assistant(
    migrated_db: str,
) -> None:
    mirror = PostgresRepository(migrated_db)
    first = mirror.upsert_agent(
        openai_assistant_id="asst_1", name="Helper", instructions="Be brief.", model="gpt-4o"
    )
    again = mirror.upsert_agent(
        openai_assistant_id="asst_1", name="Helper 2", instructions=None, model="gpt-4o-mini"
    )
    assert first == again
    assert mirror.find_agent(first) == first
    assert mirror.find_agent("asst_1") == first
    assert mirror.find_agent("Helper 2") == first
    assert mirror.find_agent("Helper") is None
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute("SELECT name, instructions, model FROM agents").fetchone()
    assert row == ("Helper 2", None, "gpt-4o-mini")
    mirror.close()


def test_the_mirror_keeps_one_conversation_per_thread_and_upserts_messages(
    migrated_db: str,
    auth_user: str,
) -> None:
    mirror = PostgresRepository(migrated_db)
    agent = mirror.upsert_agent(
        openai_assistant_id="asst_1", name="Helper", instructions=None, model="gpt-4o"
    )
    conversation = mirror.insert_conversation(
        agent_id=agent, user_id=auth_user, openai_thread_id="thread_1"
    )
    assert conversation == mirror.insert_conversation(
        agent_id=agent, user_id=auth_user, openai_thread_id="thread_1"
    )
    kwargs = {"openai_thread_id": "thread_1", "openai_message_id": "msg_1", "role": "user"}
    mirror.insert_message(**kwargs, content="first")
    mirror.insert_message(**kwargs, content="edited")
    mirror.insert_message(
        openai_thread_id="thread_unknown", openai_message_id="msg_2", role="user", content="x"
    )
    with psycopg.connect(migrated_db) as conn:
        rows = conn.execute("SELECT conversation_id::text, content FROM messages").fetchall()
    assert rows == [(conversation, "edited")]
    mirror.close()


def test_a_prune_during_a_sync_never_hides_the_rows_written_after_it(tmp_path: Path) -> None:
    store = SQLiteRepository(tmp_path / "store.sqlite3")
    store.write(records(5, start=T0))
    batch = store.pending(10)  # a sync reads, and is writing remotely…
    assert store.prune(T0 + timedelta(days=1)) == 5  # …while a prune empties the table
    fresh = records(2, start=T0 + timedelta(days=2))
    store.write(fresh)
    store.mark_synced(batch.last)  # the sync ends
    assert [r.id for r in store.pending(10).records] == [r.id for r in fresh]
    store.close()


def test_a_unique_id_prefix_finds_its_row_and_a_shared_one_finds_every_match(
    repo: Repository,
) -> None:
    from aigw.storage.base import id_prefix_range

    batch = [
        replace(full_record(), id="0b7a5f0e-8c1e-7d1c-9a55-00000000000a"),
        replace(full_record(), id="0b7a5f0e-8c1e-7d1c-9a55-00000000000b"),
        replace(full_record(), id="1c7a5f0e-8c1e-7d1c-9a55-00000000000c"),
    ]
    repo.write(batch)
    span = id_prefix_range("1C7A")  # what `aigw logs show` asks, whatever the case typed
    assert span is not None
    assert repo.ids_between(*span, limit=3) == [batch[2].id]
    shared = id_prefix_range("0b7a5f0e-8c1e")
    assert shared is not None
    assert repo.ids_between(*shared, limit=3) == [batch[0].id, batch[1].id]
    assert repo.ids_between(*shared, limit=1) == [batch[0].id]
    none = id_prefix_range("ffff")
    assert none is not None and repo.ids_between(*none, limit=3) == []
