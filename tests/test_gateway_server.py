"""`aigw gateway serve`: the official SDK, configured like the design document's client, drives
the Assistants API through the gateway to the sandbox; one log row per upstream attempt."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from aigw.sandbox import Sandbox
from tests.helpers.gateway import (
    GATEWAY_KEY,
    RunningGateway,
    authorised,
    gateway,
    http,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def through(fresh_sandbox: Sandbox) -> Iterator[RunningGateway]:
    """The gateway in front of this test's sandbox, default policies, cache on."""
    with gateway(fresh_sandbox.url) as running:
        yield running


def test_the_sdk_drives_every_seed_endpoint_through_the_gateway(through: RunningGateway) -> None:
    client = through.client()
    assistant = client.beta.assistants.create(model="gpt-4o-mini", name="Suporte")
    assert client.beta.assistants.retrieve(assistant.id).name == "Suporte"
    assert assistant.id in [a.id for a in client.beta.assistants.list(limit=20)]
    client.beta.assistants.update(assistant.id, name="Suporte 2")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Olá, preciso de ajuda"}]
    )
    assert client.beta.threads.retrieve(thread.id).id == thread.id
    client.beta.threads.update(thread.id, metadata={"ticket": "42"})
    client.beta.threads.messages.create(thread.id, role="user", content="Mais uma coisa")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert run.status == "completed"
    assert [r.id for r in client.beta.threads.runs.list(thread.id)] == [run.id]
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id)
    assert [s.type for s in steps] == ["message_creation"]
    messages = client.beta.threads.messages.list(thread.id, order="asc")
    assert messages.data[-1].content[0].text.value == "You said: Mais uma coisa"
    assert client.beta.assistants.delete(assistant.id).deleted

    rows = through.rows()
    assert len(rows) >= 13 and all(r.status_code in (200, 201) for r in rows)
    templates = {r.endpoint for r in rows}
    assert "/v1/threads/{thread_id}/runs/{run_id}/steps" in templates
    assert all(r.source == "aigw-gateway" and r.attempt == 1 for r in rows)
    created = next(r for r in rows if r.endpoint == "/v1/threads/{thread_id}/runs")
    assert created.run_id == run.id and created.assistant_id == assistant.id
    assert created.model == "gpt-4o-mini"


def test_a_streamed_run_passes_through_event_by_event_and_its_usage_is_logged(
    through: RunningGateway,
) -> None:
    client = through.client()
    assistant = client.beta.assistants.create(model="gpt-4o-mini")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "stream me"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as events:
        names = [event.event for event in events]
        final = events.get_final_run()
    assert names[0] == "thread.created" or names[0] == "thread.run.created"
    assert "thread.message.delta" in names and names[-1] == "thread.run.completed"
    runs = "/v1/threads/{thread_id}/runs"
    rows = through.rows_when(lambda rows: any(r.endpoint == runs for r in rows))
    row = next(r for r in rows if r.endpoint == runs)
    assert row.run_id == final.id
    assert final.usage is not None and row.total_tokens == final.usage.total_tokens
    assert row.model == final.model


def test_the_tool_call_round_trip_goes_through(through: RunningGateway) -> None:
    client = through.client()
    assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Use get_weather city=Lisbon"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert run.status == "requires_action"
    assert run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Lisbon"}
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "18C"}],
        poll_interval_ms=10,
    )
    assert done.status == "completed"
    reply = client.beta.threads.messages.list(thread.id).data[0]
    assert reply.content[0].text.value == "get_weather returned 18C"


def test_a_missing_or_wrong_gateway_key_is_a_401_in_openais_shape(
    through: RunningGateway, fresh_sandbox: Sandbox
) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        through.client(gateway_key="gk-wrong").beta.assistants.list()
    assert refused.value.status_code == 401
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_gateway_key"
    status, _, raw = http("GET", f"{through.url}/assistants")
    error = json.loads(raw)["error"]
    assert status == 401 and set(error) == {"message", "type", "param", "code"}
    assert fresh_sandbox.faults.requests_seen == 0  # nothing reached the upstream
    assert through.rows() == []


def test_the_next_and_listed_keys_are_accepted_during_a_rotation(fresh_sandbox: Sandbox) -> None:
    keys = {"gateway_api_key_next": "gk-next-000000000002", "gateway_api_keys": "gk-a, gk-b"}
    with gateway(fresh_sandbox.url, **keys) as running:
        for key in (GATEWAY_KEY, "gk-next-000000000002", "gk-b"):
            assert running.client(gateway_key=key).beta.assistants.list().data == []


def test_rows_record_the_user_header_and_never_the_keys(fresh_sandbox: Sandbox) -> None:
    with gateway(fresh_sandbox.url, log_payloads=True) as running:
        client = running.client(headers={"x-aigw-user-id": "u-7"})
        client.beta.assistants.create(model="gpt-4o-mini", instructions=f"the key is {GATEWAY_KEY}")
        (row,) = running.rows()
    assert row.user_id == "u-7"
    stored = json.dumps([row.request_payload, row.response_payload, row.error_message])
    assert GATEWAY_KEY not in stored and "sk-app" not in stored


def test_healthz_readyz_and_metrics_answer(through: RunningGateway) -> None:
    through.client().beta.assistants.list()
    base = through.url.removesuffix("/v1")
    assert http("GET", f"{base}/healthz")[0] == 200
    status, _, raw = http("GET", f"{base}/readyz")
    ready = json.loads(raw)
    assert status == 200 and ready["upstream"]["circuit"] == "closed"
    assert ready["local_store"]["writable"] is True
    status, headers, text = http("GET", f"{base}/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    exposition = text.decode()
    assert (
        'aigw_gateway_requests_total{endpoint="/v1/assistants",method="GET",status="200"} 1.0'
        in exposition
    )
    assert "aigw_gateway_request_duration_seconds_bucket" in exposition
    assert 'aigw_gateway_cache_total{result="miss"} 1.0' in exposition
    assert (
        f'breaker_state{{state="closed",upstream="{through.runtime.upstream_host}"}} 1.0'
        in exposition
    )
    assert "aigw_gateway_log_rows_pending_sync" in exposition


def test_unknown_routes_and_methods_answer_in_openais_shape(through: RunningGateway) -> None:
    status, _, raw = http("GET", through.url.removesuffix("/v1") + "/nothing-here")
    assert status == 404 and set(json.loads(raw)["error"]) == {"message", "type", "param", "code"}
    status, _, raw = http("GET", f"{through.url}/assistants/asst_missing", headers=authorised())
    assert status == 404 and "asst_missing" in json.loads(raw)["error"]["message"]
