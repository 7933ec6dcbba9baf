"""Every kind of object the sandbox answers, checked against the schemas of the OpenAPI spec.

The raw JSON bodies (not the SDK's parsed models, which forgive a lot) are validated with
jsonschema against `tests/data/openai-assistants-openapi.json`, or the copy named by
AIGW_OPENAPI_SPEC.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from aigw.sandbox import Sandbox
from tests.helpers.openapi import ASSISTANTS_SPEC, checker
from tests.helpers.sandbox import WEATHER, ManualClock, client_for, running

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# A copy of shared/reference/openai-assistants-openapi.json (the Assistants part of OpenAI's
# published spec), kept in the repository so the test runs wherever the clone is.
SPEC = Path(os.environ.get("AIGW_OPENAPI_SPEC", str(ASSISTANTS_SPEC)))
RUN_S = 0.04


@pytest.fixture(scope="module")
def conforms() -> Any:
    if not SPEC.exists():
        pytest.skip(f"OpenAPI spec not found at {SPEC}")
    return checker(SPEC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server(clock: ManualClock) -> Iterator[Sandbox]:
    with running(clock, requires_action_expiry_s=30) as sandbox:
        yield sandbox


def raw(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The JSON body as sent, from an SDK method's `with_raw_response` twin."""
    return json.loads(call(*args, **kwargs).http_response.text)


def test_assistants_threads_and_their_lists_match_the_spec(server: Sandbox, conforms) -> None:
    client = client_for(server)
    a = client.beta.assistants.with_raw_response
    assistant = raw(a.create, model="gpt-4o", name="Spec", tools=[WEATHER])
    conforms("AssistantObject", assistant)
    conforms("ListAssistantsResponse", raw(a.list))
    conforms("DeleteAssistantResponse", raw(a.delete, assistant["id"]))

    t = client.beta.threads.with_raw_response
    thread = raw(t.create, messages=[{"role": "user", "content": "hi"}], metadata={"k": "v"})
    conforms("ThreadObject", thread)
    conforms("ThreadObject", raw(t.update, thread["id"], metadata={"k": "w"}))

    m = client.beta.threads.messages.with_raw_response
    message = raw(m.create, thread["id"], role="user", content=[{"type": "text", "text": "x"}])
    conforms("MessageObject", message)
    conforms("ListMessagesResponse", raw(m.list, thread["id"]))
    conforms("DeleteMessageResponse", raw(m.delete, message["id"], thread_id=thread["id"]))
    conforms("DeleteThreadResponse", raw(t.delete, thread["id"]))


def test_runs_in_every_status_and_their_steps_match_the_spec(
    server: Sandbox, clock: ManualClock, conforms
) -> None:
    client = client_for(server)
    runs = client.beta.threads.runs.with_raw_response
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])

    def start(text: str) -> tuple[str, str]:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
        run = raw(runs.create, thread_id=thread.id, assistant_id=assistant.id)
        conforms("RunObject", run)  # queued
        return thread.id, run["id"]

    def run_now(thread_id: str, run_id: str) -> dict[str, Any]:
        run = raw(runs.retrieve, run_id, thread_id=thread_id)
        conforms("RunObject", run)
        return run

    completed = start("plain reply")
    tools = start("get_weather city=Paris")
    failing = start("[sandbox:fail]")
    cancelled = start("to cancel")
    expiring = start("get_weather again")
    clock.advance(0.5 * RUN_S)
    assert run_now(*completed)["status"] == "in_progress"
    conforms("RunObject", raw(runs.cancel, cancelled[1], thread_id=cancelled[0]))  # cancelling
    clock.advance(RUN_S)

    assert run_now(*completed)["status"] == "completed"
    assert run_now(*failing)["status"] == "failed"
    assert run_now(*cancelled)["status"] == "cancelled"
    waiting = run_now(*tools)
    assert waiting["status"] == "requires_action"
    call = waiting["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    resumed = raw(
        runs.submit_tool_outputs,
        tools[1],
        thread_id=tools[0],
        tool_outputs=[{"tool_call_id": call["id"], "output": "20C"}],
    )
    conforms("RunObject", resumed)
    clock.advance(31)
    assert run_now(*expiring)["status"] == "expired"
    assert run_now(*tools)["status"] == "completed"
    conforms("ListRunsResponse", raw(runs.list, tools[0]))

    steps = client.beta.threads.runs.steps.with_raw_response
    for thread_id, run_id in (completed, tools, expiring, cancelled):
        listed = raw(steps.list, run_id, thread_id=thread_id)
        conforms("ListRunStepsResponse", listed)
        for step in listed["data"]:
            conforms(
                "RunStepObject", raw(steps.retrieve, step["id"], thread_id=thread_id, run_id=run_id)
            )
    messages = client.beta.threads.messages.with_raw_response
    for thread_id, _ in (completed, cancelled):  # a completed and an incomplete reply
        conforms("ListMessagesResponse", raw(messages.list, thread_id))


def test_error_bodies_match_the_spec(server: Sandbox, conforms) -> None:
    client = client_for(server)
    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.threads.retrieve("thread_missing")
    conforms("ErrorResponse", missing.value.response.json())
    with pytest.raises(openai.BadRequestError) as bad:
        client.beta.threads.messages.create(
            client.beta.threads.create().id, role="user", content=""
        )
    conforms("ErrorResponse", bad.value.response.json())


def test_the_schema_check_itself_rejects_a_wrong_object(conforms) -> None:
    with pytest.raises(AssertionError, match="required_action"):
        conforms("RunObject", {"id": "run_x", "object": "thread.run"})


def test_streamed_objects_match_the_spec(conforms) -> None:
    schemas = {"thread.run": "RunObject", "thread.run.step": "RunStepObject"}
    schemas |= {"thread.message": "MessageObject", "thread": "ThreadObject"}
    with running() as server:
        client = client_for(server)
        assistant = client.beta.assistants.create(model="gpt-4o")
        stream = client.beta.threads.with_raw_response.create_and_run(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "stream it"}]},
            stream=True,
        )
        checked = 0
        text = stream.http_response.read().decode()
        for block in text.strip().split("\n\n"):
            event, data = (line.split(": ", 1)[1] for line in block.splitlines())
            if data == "[DONE]":
                assert event == "done"
                continue
            body = json.loads(data)
            if body["object"] in schemas:
                conforms(schemas[body["object"]], body)
                checked += 1
        assert checked >= 10
