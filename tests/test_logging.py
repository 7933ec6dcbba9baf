"""The logging layer against the sandbox over real HTTP: one local row per HTTP attempt."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest

from aigw.context import AppContext
from aigw.gateway.endpoints import parse
from aigw.sandbox import Sandbox
from aigw.settings import Settings
from aigw.storage import open_state
from aigw.storage.call_log import CallLog
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.cli import Cli, point_at
from tests.helpers.rows import local_rows


def app_for(home: Path) -> AppContext:
    return AppContext(Settings(home=home))


def test_n_calls_make_exactly_n_local_rows_with_templates_statuses_and_latencies(
    cli: Cli, gateway_env: Sandbox, isolated_env: Path
) -> None:
    created = cli("assistants", "create", "--model", "gpt-4o", "--name", "Log me", "--json")
    assert created.exit_code == 0, created.stderr
    assistant_id = created.stdout.split('"id": "')[1].split('"')[0]
    assert cli("assistants", "get", assistant_id).exit_code == 0
    assert cli("assistants", "update", assistant_id, "--name", "Renamed").exit_code == 0
    assert cli("assistants", "list", "--no-cache").exit_code == 0
    assert cli("assistants", "get", "asst_doesnotexist").exit_code == 1
    assert cli("assistants", "delete", assistant_id, "--yes").exit_code == 0

    rows = local_rows(isolated_env)
    assert [(r["method"], r["endpoint"], r["status_code"]) for r in rows] == [
        ("POST", "/v1/assistants", 200),
        ("GET", "/v1/assistants/{assistant_id}", 200),
        ("POST", "/v1/assistants/{assistant_id}", 200),
        ("GET", "/v1/assistants", 200),
        ("GET", "/v1/assistants/{assistant_id}", 404),
        ("DELETE", "/v1/assistants/{assistant_id}", 200),
    ]
    assert rows[1]["path"] == f"/v1/assistants/{assistant_id}"
    assert all(r["latency_ms"] > 0 and r["route"] == "gateway" for r in rows)
    assert all(r["request_id"] and r["call_id"] and r["attempt"] == 1 for r in rows)
    assert len({r["call_id"] for r in rows}) == len({r["id"] for r in rows}) == 6
    assert rows[0]["assistant_id"] == assistant_id and rows[0]["model"] == "gpt-4o"
    assert rows[4]["error_message"] == "No assistant found with id 'asst_doesnotexist'."
    assert all(r["request_payload"] is None and r["response_payload"] is None for r in rows)


def test_a_completed_run_records_its_ids_model_and_token_usage(
    gateway_env: Sandbox, isolated_env: Path
) -> None:
    app = app_for(isolated_env)
    assistant = app.openai.beta.assistants.create(model="gpt-4o-mini")
    thread = app.openai.beta.threads.create(messages=[{"role": "user", "content": "Hi there"}])
    run = app.openai.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    deadline = time.monotonic() + 30
    while run.status not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"the run is still {run.status}"
        time.sleep(0.02)
        run = app.openai.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    app.close()

    rows = local_rows(isolated_env)
    created = next(r for r in rows if r["endpoint"] == "/v1/threads/{thread_id}/runs")
    assert (created["thread_id"], created["run_id"]) == (thread.id, run.id)
    assert (created["assistant_id"], created["model"]) == (assistant.id, "gpt-4o-mini")
    last = rows[-1]
    assert last["endpoint"] == "/v1/threads/{thread_id}/runs/{run_id}"
    assert run.usage is not None
    assert (last["prompt_tokens"], last["completion_tokens"], last["total_tokens"]) == (
        run.usage.prompt_tokens,
        run.usage.completion_tokens,
        run.usage.total_tokens,
    )
    assert rows[1]["endpoint"] == "/v1/threads" and rows[1]["thread_id"] == thread.id


def test_a_streamed_run_is_passed_through_untouched_and_logged(
    gateway_env: Sandbox, isolated_env: Path
) -> None:
    app = app_for(isolated_env)
    assistant = app.openai.beta.assistants.create(model="gpt-4o")
    thread = app.openai.beta.threads.create(messages=[{"role": "user", "content": "Stream"}])
    with app.openai.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as s:
        s.until_done()
        final = s.get_final_run()
    app.close()
    assert final.status == "completed"
    row = local_rows(isolated_env)[-1]
    assert (row["endpoint"], row["status_code"], row["thread_id"]) == (
        "/v1/threads/{thread_id}/runs",
        200,
        thread.id,
    )
    assert row["response_payload"] is None


def test_a_refused_connection_fails_as_before_and_is_still_logged(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_GATEWAY_URL", "http://127.0.0.1:9/v1")  # discard port: refused
    monkeypatch.setenv("GATEWAY_API_KEY", "gk-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000abcd")
    monkeypatch.setenv("AIGW_MAX_RETRIES", "0")
    app = app_for(isolated_env)
    with pytest.raises(openai.APIConnectionError):
        app.openai.beta.assistants.list()
    app.close()
    [row] = local_rows(isolated_env)
    assert row["status_code"] is None and row["endpoint"] == "/v1/assistants"
    assert row["error_message"].startswith("ConnectError")


def test_retried_attempts_share_one_call_id_with_numbered_attempts(
    fresh_sandbox: Sandbox, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    fresh_sandbox.faults.add("GET /v1/assistants 503 retry-after-ms=1 x2")
    app = app_for(isolated_env)
    app.command_options["no_cache"] = True
    app.openai.beta.assistants.list()
    app.close()
    rows = local_rows(isolated_env)
    assert [(r["attempt"], r["status_code"]) for r in rows] == [(1, 503), (2, 503), (3, 200)]
    assert len({r["call_id"] for r in rows}) == 1


def test_a_cache_hit_is_logged_with_its_cache_status(
    gateway_env: Sandbox, isolated_env: Path
) -> None:
    for _ in range(2):
        app = app_for(isolated_env)
        app.openai.beta.assistants.list()
        app.close()
    assert [r["cache_status"] for r in local_rows(isolated_env)] == ["miss", "hit"]


def test_rows_carry_the_user_id_and_the_agent_id_the_mirror_recorded(
    gateway_env: Sandbox, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGW_USER_ID", "6f1c1b7e-0000-4000-8000-000000000001")
    app = app_for(isolated_env)
    assistant = app.openai.beta.assistants.create(model="gpt-4o")
    app.repository.remember_agent(assistant.id, "6f1c1b7e-0000-4000-8000-0000000000aa")
    app.close()
    app = app_for(isolated_env)
    app.openai.beta.assistants.retrieve(assistant.id)
    app.close()
    first, second = local_rows(isolated_env)
    assert first["user_id"] == second["user_id"] == "6f1c1b7e-0000-4000-8000-000000000001"
    # The create call, logged before the mirror recorded its agent, gets it too.
    assert first["agent_id"] == second["agent_id"] == "6f1c1b7e-0000-4000-8000-0000000000aa"


def test_a_store_that_cannot_be_written_never_fails_the_call_and_is_said_at_close(
    gateway_env: Sandbox, isolated_env: Path
) -> None:
    settings = Settings(home=isolated_env)
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    failing = [True]

    def open_store() -> SQLiteRepository:
        if failing[0]:
            raise OSError("disk full")
        return store

    from aigw.gateway.client import Gateway

    log = CallLog(open_store)
    gateway = Gateway(settings, state=open_state(settings), log=log)
    assert len(gateway.client.beta.assistants.list().data) >= 0
    gateway.client.beta.assistants.list(extra_query={"limit": 2})
    assert len(log.unwritten) == 2 and "disk full" in (log.problem or "")
    failing[0] = False  # the disk has room again by the end of the command
    gateway.close()
    assert log.unwritten == []
    rows = local_rows(isolated_env)
    assert [r["endpoint"] for r in rows] == ["/v1/assistants", "/v1/assistants"]
    store.close()


def test_rows_a_store_still_refuses_at_close_are_counted_and_warned_about(
    gateway_env: Sandbox, isolated_env: Path
) -> None:
    app = app_for(isolated_env)
    app.call_log = CallLog(_read_only_store)
    app.openai.beta.assistants.list()  # the call itself succeeds
    warnings = app.close()
    assert len(app.call_log.unwritten) == 1
    assert warnings == ["1 log rows could not be saved (OSError: read-only file system)"]


def _read_only_store() -> SQLiteRepository:
    raise OSError("read-only file system")


def test_the_row_names_what_the_response_says(gateway_env: Sandbox) -> None:
    from aigw.common.log_record import LogRecord
    from aigw.gateway.http import HTTPTransport, Request
    from aigw.gateway.transports.logging import LoggingTransport

    kept: list[LogRecord] = []
    layer = LoggingTransport(HTTPTransport(), kept.append, route="gateway")
    body = b'{"model": "gpt-4o", "name": "x"}'
    url = f"{gateway_env.url}/assistants"
    headers = {"authorization": "Bearer sk-test", "content-type": "application/json"}
    response = layer.handle_request(Request("POST", url, headers=headers, content=body))
    made = response.json()
    assert made == json.loads(response.content) and made["object"] == "assistant"
    [row] = kept
    assert (row.assistant_id, row.model, row.status_code) == (made["id"], "gpt-4o", 200)
    assert (row.endpoint, row.call_id, row.attempt) == ("/v1/assistants", row.id, 1)


@pytest.mark.parametrize(
    ("path", "template", "ids"),
    [
        ("/v1/assistants", "/v1/assistants", {}),
        ("/v1/assistants/asst_1", "/v1/assistants/{assistant_id}", {"assistant_id": "asst_1"}),
        ("/v1/threads/runs", "/v1/threads/runs", {}),
        (
            "/v1/threads/thread_abc/runs",
            "/v1/threads/{thread_id}/runs",
            {"thread_id": "thread_abc"},
        ),
        (
            "/gw/v1/threads/t/runs/r/steps/s?limit=2",
            "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}",
            {"thread_id": "t", "run_id": "r", "step_id": "s"},
        ),
        (
            "https://gateway.ai.vercel.app/v1/threads/t/runs/r/submit_tool_outputs",
            "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
            {"thread_id": "t", "run_id": "r"},
        ),
    ],
)
def test_paths_map_to_the_spec_templates(path: str, template: str, ids: dict[str, str]) -> None:
    endpoint = parse(path)
    assert (endpoint.template, endpoint.ids) == (template, ids)


# Every path of the Assistants OpenAPI spec (shared/reference/openai-assistants-openapi.json).
SPEC_PATHS = [
    "/assistants",
    "/assistants/{assistant_id}",
    "/threads",
    "/threads/runs",
    "/threads/{thread_id}",
    "/threads/{thread_id}/messages",
    "/threads/{thread_id}/messages/{message_id}",
    "/threads/{thread_id}/runs",
    "/threads/{thread_id}/runs/{run_id}",
    "/threads/{thread_id}/runs/{run_id}/cancel",
    "/threads/{thread_id}/runs/{run_id}/steps",
    "/threads/{thread_id}/runs/{run_id}/steps/{step_id}",
    "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
]


@pytest.mark.parametrize("spec_path", SPEC_PATHS)
def test_every_path_of_the_openapi_spec_maps_back_to_its_template(spec_path: str) -> None:
    import re

    raw = re.sub(r"\{(\w+)\}", lambda m: m.group(1).split("_")[0] + "_x1Y2", spec_path)
    assert parse("/v1" + raw).template == "/v1" + spec_path


def test_header_lookups_join_repeated_headers_as_httpx_does() -> None:
    from aigw.gateway.http import Response, header, headers_named

    raw = [(b"Cache-Control", b"max-age=60"), (b"content-type", b"text/plain")]
    response = Response(200, headers=[*raw, (b"cache-control", b"no-store")])
    assert header(response.headers, b"cache-control") == "max-age=60, no-store"
    assert header(response.headers, b"cache-control") == response.headers["cache-control"]
    names = (b"content-type", b"cache-control", b"x-request-id")
    assert headers_named(response.headers, names) == ["text/plain", "max-age=60, no-store", ""]
