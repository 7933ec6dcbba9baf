"""The supabase-py path: the exact REST requests sync and the mirror send (pytest-httpx)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpx import HTTPXMock

from aigw.common.log_record import LogRecord
from aigw.errors import AigwError
from aigw.storage.sqlite import SQLiteRepository
from aigw.storage.supabase_rest import SupabaseRepository
from tests.helpers.cli import Cli

URL = "https://proj.supabase.co"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
LOGS = f"{URL}/rest/v1/ai_gateway_logs"


def a_record(**fields: object) -> LogRecord:
    values: dict[str, object] = {
        "endpoint": "/v1/threads/{thread_id}/runs",
        "method": "POST",
        "id": "0b7a5f0e-8c1e-4d1c-9a55-000000000001",
        "created_at": datetime(2026, 5, 1, 9, 30, 0, 250000, tzinfo=UTC),
        "status_code": 200,
        "latency_ms": 41.6,
        "path": "/v1/threads/thread_1/runs",
        "call_id": "0b7a5f0e-8c1e-4d1c-9a55-0000000000c1",
        "attempt": 1,
        "route": "gateway",
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "model": "gpt-4o",
        "user_id": "not-a-uuid",
    }
    values.update(fields)
    return LogRecord(**values)  # type: ignore[arg-type]


def the_row(record: LogRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "created_at": "2026-05-01T09:30:00.250000+00:00",
        "endpoint": "/v1/threads/{thread_id}/runs",
        "method": "POST",
        "status_code": 200,
        "latency_ms": 42,
        "request_payload": None,
        "response_payload": None,
        "error_message": None,
        "user_id": None,  # not a UUID: NULL remotely, kept locally
        "agent_id": None,
        "path": "/v1/threads/thread_1/runs",
        "request_id": None,
        "call_id": "0b7a5f0e-8c1e-4d1c-9a55-0000000000c1",
        "attempt": 1,
        "route": "gateway",
        "cache_status": None,
        "thread_id": "thread_1",
        "run_id": None,
        "assistant_id": "asst_1",
        "model": "gpt-4o",
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
        "source": "aigw",
    }


def assert_service_role(request: object) -> None:
    headers = request.headers  # type: ignore[attr-defined]
    assert headers["apikey"] == KEY
    assert headers["authorization"] == f"Bearer {KEY}"


def test_a_batch_is_one_idempotent_upsert_on_id(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", status_code=201)
    record = a_record()
    store = SupabaseRepository(URL, KEY)
    store.write([record])

    [request] = httpx_mock.get_requests()
    assert request.url.path == "/rest/v1/ai_gateway_logs"
    assert request.url.params["on_conflict"] == "id"
    assert set(request.url.params["columns"].replace('"', "").split(",")) == set(the_row(record))
    assert request.headers["prefer"] == "return=minimal,resolution=ignore-duplicates"
    assert_service_role(request)
    assert json.loads(request.content) == [the_row(record)]


def test_a_foreign_key_refusal_resends_the_batch_with_unknown_references_cleared(
    httpx_mock: HTTPXMock,
) -> None:
    known, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    user = str(uuid.uuid4())
    batch = [
        a_record(id=str(uuid.uuid4()), user_id=user, agent_id=known),
        a_record(id=str(uuid.uuid4()), user_id=user, agent_id=unknown),
    ]
    refusal = {"code": "23503", "message": "violates foreign key constraint", "details": None}
    httpx_mock.add_response(
        method="POST", url=re.compile(re.escape(LOGS) + ".*"), status_code=409, json=refusal
    )
    httpx_mock.add_response(method="GET", json=[{"id": known}])
    httpx_mock.add_response(method="POST", url=re.compile(re.escape(LOGS) + ".*"), status_code=201)

    SupabaseRepository(URL, KEY).write(batch)

    first, lookup, second = httpx_mock.get_requests()
    assert [r["user_id"] for r in json.loads(first.content)] == [user, user]
    assert lookup.url.path == "/rest/v1/agents"
    assert lookup.url.params["select"] == "id"
    assert lookup.url.params["id"] == f"in.({','.join(sorted([known, unknown]))})"
    resent = json.loads(second.content)
    assert [(r["user_id"], r["agent_id"]) for r in resent] == [(None, known), (None, None)]
    assert second.headers["prefer"] == "return=minimal,resolution=ignore-duplicates"


def test_logs_sync_through_supabase_sends_the_pending_rows_and_marks_them(
    httpx_mock: HTTPXMock, cli: Cli, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_URL", URL)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", KEY)
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    batch = [a_record(id=str(uuid.uuid4())) for _ in range(5)]
    store.write(batch)
    httpx_mock.add_response(
        method="POST", url=re.compile(re.escape(LOGS) + ".*"), status_code=201, is_reusable=True
    )

    result = cli("logs", "sync", "--batch-size", "2", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["synced"] == 5
    requests = httpx_mock.get_requests()
    assert [len(json.loads(r.content)) for r in requests] == [2, 2, 1]
    assert [row["id"] for r in requests for row in json.loads(r.content)] == [r.id for r in batch]
    assert store.pending_count() == 0
    assert KEY not in result.stdout + result.stderr
    store.close()


def test_a_supabase_error_fails_the_sync_with_exit_8_and_keeps_the_rows(
    httpx_mock: HTTPXMock, cli: Cli, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_URL", URL)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", KEY)
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    store.write([a_record()])
    httpx_mock.add_response(
        method="POST", status_code=401, json={"code": "PGRST301", "message": "JWT expired"}
    )

    result = cli("logs", "sync")

    assert result.exit_code == 8
    assert "JWT expired" in result.stderr and "1 rows are still pending" in result.stderr
    assert KEY not in result.stderr
    assert store.pending_count() == 1
    store.close()


def test_the_mirror_upserts_an_agent_on_its_assistant_id(httpx_mock: HTTPXMock) -> None:
    agent_id = str(uuid.uuid4())
    httpx_mock.add_response(method="POST", status_code=201, json=[{"id": agent_id}])

    got = SupabaseRepository(URL, KEY).upsert_agent(
        openai_assistant_id="asst_1", name="Helper", instructions=None, model="gpt-4o"
    )

    assert got == agent_id
    [request] = httpx_mock.get_requests()
    assert request.url.path == "/rest/v1/agents"
    assert request.url.params["on_conflict"] == "openai_assistant_id"
    assert request.headers["prefer"] == "return=representation,resolution=merge-duplicates"
    assert_service_role(request)
    assert json.loads(request.content) == {
        "openai_assistant_id": "asst_1",
        "name": "Helper",
        "instructions": None,
        "model": "gpt-4o",
    }


def test_the_mirror_skips_messages_of_threads_it_does_not_know(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", json=[])

    SupabaseRepository(URL, KEY).insert_message(
        openai_thread_id="thread_x", openai_message_id="msg_1", role="user", content="hi"
    )

    [request] = httpx_mock.get_requests()
    assert request.url.path == "/rest/v1/conversations"
    assert request.url.params["openai_thread_id"] == "eq.thread_x"


def test_logs_show_asks_supabase_for_the_ids_a_prefix_spans_then_the_row(
    httpx_mock: HTTPXMock, cli: Cli, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_URL", URL)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", KEY)
    record = a_record()
    httpx_mock.add_response(method="GET", json=[{"id": record.id}])
    httpx_mock.add_response(method="GET", json=[the_row(record)])

    result = cli("logs", "show", "0B7A5F0E-8C", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"] == record.id
    span, row = httpx_mock.get_requests()
    for request in (span, row):
        assert_service_role(request)
        assert request.url.path == "/rest/v1/ai_gateway_logs"
    assert span.url.params.get_list("id") == [
        "gte.0b7a5f0e-8c00-0000-0000-000000000000",
        "lte.0b7a5f0e-8cff-ffff-ffff-ffffffffffff",
    ]
    assert (span.url.params["select"], span.url.params["order"]) == ("id", "id.asc")
    assert span.url.params["limit"] == "3"  # two are enough to call it ambiguous
    assert row.url.params["id"] == f"eq.{record.id}"


def test_an_agent_filter_finds_the_agent_by_name_as_aigw_metrics_does(
    httpx_mock: HTTPXMock,
) -> None:
    from aigw.storage.base import LogFilter

    named = "0b7a5f0e-8c1e-4d1c-9a55-00000000a6e7"
    httpx_mock.add_response(
        method="GET", json=[{"id": named, "name": "Sup, port", "openai_assistant_id": "asst_1"}]
    )
    httpx_mock.add_response(method="GET", json=[the_row(a_record())])

    rows = SupabaseRepository(URL, KEY).records(
        LogFilter(agent="Sup, port", model="gpt-4o", status="4xx")
    )

    assert [r.id for r in rows] == [a_record().id]
    lookup, logs = httpx_mock.get_requests()
    assert lookup.url.path == "/rest/v1/agents"
    assert lookup.url.params["name"] == "eq.Sup, port"
    assert logs.url.params["or"] == f'(assistant_id.eq."Sup, port",agent_id.in.({named}))'
    assert logs.url.params["model"] == "eq.gpt-4o"
    # By the agent's id: its rows, and its assistant's rows that carry no agent id.
    httpx_mock.add_response(
        method="GET", json=[{"id": named, "name": "Support", "openai_assistant_id": "asst_1"}]
    )
    httpx_mock.add_response(method="GET", json=[])
    SupabaseRepository(URL, KEY).records(LogFilter(agent=named))
    _, _, lookup, logs = httpx_mock.get_requests()
    assert lookup.url.params["or"] == f'(id.eq.{named},name.eq."{named}")'
    assert logs.url.params["or"] == (
        f'(assistant_id.eq."{named}",agent_id.eq.{named},'
        'and(agent_id.is.null,assistant_id.in.("asst_1")))'
    )


def test_forget_keeps_an_agent_another_conversation_still_refers_to(
    httpx_mock: HTTPXMock,
) -> None:
    conversation = str(uuid.uuid4())
    log_id = str(uuid.uuid4())

    def deleted(path: str, count: int) -> None:
        httpx_mock.add_response(
            method="DELETE",
            url=re.compile(re.escape(f"{URL}/rest/v1/{path}") + r"\?.*"),
            status_code=204,
            headers={"content-range": f"*/{count}"},
        )

    deleted("ai_gateway_logs", 1)
    httpx_mock.add_response(method="GET", json=[{"id": conversation}])
    deleted("messages", 2)
    deleted("conversations", 1)
    refusal = {"code": "23503", "message": "violates foreign key constraint", "details": None}
    httpx_mock.add_response(
        method="DELETE",
        url=re.compile(re.escape(f"{URL}/rest/v1/agents") + r"\?.*"),
        status_code=409,
        json=refusal,
    )

    gone = SupabaseRepository(URL, KEY).forget(
        [log_id], openai_assistant_id="asst_1", openai_thread_id="thread_1"
    )

    assert gone == 4  # the agent kept: the refusal is no failure
    sent = [(r.method, r.url.path, dict(r.url.params)) for r in httpx_mock.get_requests()]
    assert sent == [
        ("DELETE", "/rest/v1/ai_gateway_logs", {"id": f"in.({log_id})"}),
        ("GET", "/rest/v1/conversations", {"select": "id", "openai_thread_id": "eq.thread_1"}),
        ("DELETE", "/rest/v1/messages", {"conversation_id": f"eq.{conversation}"}),
        ("DELETE", "/rest/v1/conversations", {"openai_thread_id": "eq.thread_1"}),
        ("DELETE", "/rest/v1/agents", {"openai_assistant_id": "eq.asst_1"}),
    ]


def test_forget_over_rest_still_fails_on_any_other_refusal(httpx_mock: HTTPXMock) -> None:
    refusal = {"code": "42501", "message": "permission denied for table agents", "details": None}
    httpx_mock.add_response(method="DELETE", status_code=403, json=refusal)

    with pytest.raises(AigwError) as failed:
        SupabaseRepository(URL, KEY).forget([], openai_assistant_id="asst_1")

    assert failed.value.code == 8 and "permission denied" in failed.value.message
