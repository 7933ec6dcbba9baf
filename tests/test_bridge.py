"""The Assistants API served by the bridge, driven by the official SDK as the design doc's app
would, with the sandbox's chat completions as the model.

Where the sandbox's own Assistants API is the reference (lifecycle, ids, event sequences), a
test runs against both and expects the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from aigw.bridge.serve import BridgeServer
from aigw.sandbox import Sandbox
from aigw.sandbox.http import Request
from tests.helpers.bridge import Calls, bridge_over, design_doc_client
from tests.helpers.openapi import ASSISTANTS_SPEC, CHAT_SPEC, checker
from tests.helpers.sandbox import WEATHER, Collector, deduplicated, running

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

assistants_spec = checker(ASSISTANTS_SPEC)
chat_spec = checker(CHAT_SPEC)


@pytest.fixture
def model() -> Iterator[Sandbox]:
    """The model: a sandbox of the test's own (its chat requests are read back)."""
    with running() as sandbox:
        yield sandbox


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def bridge(model: Sandbox, tmp_path: Path, calls: Calls) -> Iterator[BridgeServer]:
    with bridge_over(model, tmp_path / "bridge.db", on_call=calls) as server:
        yield server


@pytest.fixture(params=["sandbox", "bridge"])
def api(request: pytest.FixtureRequest, model: Sandbox, tmp_path: Path) -> Iterator[str]:
    """The base URL of an Assistants API: the sandbox's own, or the bridge over it."""
    if request.param == "sandbox":
        yield model.url
    else:
        with bridge_over(model, tmp_path / "bridge.db") as server:
            yield server.url


def test_the_design_docs_client_runs_the_whole_function_tool_flow(
    bridge: BridgeServer, model: Sandbox, calls: Calls
) -> None:
    client = design_doc_client(bridge.url)
    assistant = client.beta.assistants.create(
        model="gpt-4o-mini", name="Weather", instructions="Answer briefly.", tools=[WEATHER]
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "get_weather city=Paris"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert run.status == "requires_action" and run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    # The call id is the model's own: what the chat completion answered is what the app sees.
    first_request = model.state.chat_requests[-1]
    assert first_request["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert first_request["tools"] == [WEATHER]

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}],
        poll_interval_ms=10,
    )
    assert run.status == "completed"
    assert run.usage is not None and run.usage.total_tokens > 0
    second_request = model.state.chat_requests[-1]
    assert second_request["messages"][-2]["tool_calls"][0]["id"] == call.id
    assert second_request["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "sunny",
    }
    for body in (first_request, second_request):
        chat_spec("CreateChatCompletionRequest", body)

    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content[0].text.value == "get_weather returned sunny"  # type: ignore[union-attr]
    assert messages[1].run_id == run.id and messages[1].assistant_id == assistant.id

    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc")
    assert [s.type for s in steps.data] == ["tool_calls", "message_creation"]
    assert steps.data[0].step_details.tool_calls[0].function.output == "sunny"  # type: ignore[union-attr]

    assert [c.status_code for c in calls] == [200, 200]
    assert {c.run_id for c in calls} == {run.id}
    assert sum(c.usage["total_tokens"] for c in calls if c.usage) == run.usage.total_tokens


def test_a_streamed_run_sends_the_sandboxs_event_sequence(api: str) -> None:
    client = design_doc_client(api)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "get_weather city=Rome"}]
    )
    first = Collector()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=first
    ) as stream:
        stream.until_done()
    assert first.events == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.requires_action",
    ]
    run = first.current_run
    assert run is not None and run.required_action is not None
    call = run.required_action.submit_tool_outputs.tool_calls[0]

    second = Collector()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "19C"}],
        event_handler=second,
    ) as stream:
        stream.until_done()
    assert deduplicated(second.events) == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert second.text == "get_weather returned 19C"


def test_a_streamed_thread_and_run_starts_with_thread_created_and_streams_the_model(
    bridge: BridgeServer, model: Sandbox
) -> None:
    client = design_doc_client(bridge.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    words = " ".join(f"w{i}" for i in range(30))
    handler = Collector()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": words}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert handler.events[0] == "thread.created"
    assert handler.events.count("thread.message.delta") > 1  # the model's chunks, one by one
    assert handler.text == f"You said: {words}"
    assert model.state.chat_requests[-1]["stream"] is True


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[sandbox:fail]", "server_error"),
        ("[sandbox:fail:rate_limit_exceeded]", "rate_limit_exceeded"),
    ],
)
def test_a_model_error_fails_the_run_with_a_last_error_the_client_reads(
    bridge: BridgeServer, text: str, code: str
) -> None:
    client = design_doc_client(bridge.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": text}]},
        poll_interval_ms=10,
    )
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == code
    assert "The model API answered" in run.last_error.message
    raw = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=run.thread_id)
    assistants_spec("RunObject", json.loads(raw.http_response.text))


def test_a_prompt_over_the_models_window_fails_the_run_as_invalid_prompt(tmp_path: Path) -> None:
    with running(context_tokens=5) as small, bridge_over(small, tmp_path / "b.db") as bridge:
        client = design_doc_client(bridge.url)
        assistant = client.beta.assistants.create(model="gpt-4o")
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "far too long for the model"}]},
            poll_interval_ms=10,
        )
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == "invalid_prompt"
    assert "context_length_exceeded" in run.last_error.message


def test_a_model_that_does_not_answer_in_time_fails_the_run(tmp_path: Path) -> None:
    with running() as slow:
        slow.faults.add("POST /v1/chat/completions delay=3000")
        with bridge_over(slow, tmp_path / "b.db", timeout_s=0.3) as bridge:
            client = design_doc_client(bridge.url)
            assistant = client.beta.assistants.create(model="gpt-4o")
            run = client.beta.threads.create_and_run_poll(
                assistant_id=assistant.id,
                thread={"messages": [{"role": "user", "content": "hi"}]},
                poll_interval_ms=20,
            )
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == "server_error"
    assert "did not answer within 0.3 s" in run.last_error.message


@pytest.mark.parametrize("kind", ["code_interpreter", "file_search"])
def test_hosted_tools_are_refused_with_a_clear_400(bridge: BridgeServer, kind: str) -> None:
    client = design_doc_client(bridge.url)
    with pytest.raises(openai.BadRequestError, match=f"does not run '{kind}' tools"):
        client.beta.assistants.create(model="gpt-4o", tools=[{"type": kind}])  # type: ignore[list-item]
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError, match=f"does not run '{kind}' tools"):
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            tools=[{"type": kind}],  # type: ignore[list-item]
        )


def test_one_active_run_per_thread_and_no_messages_while_it_runs(api: str) -> None:
    client = design_doc_client(api)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "get_weather"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError, match="already has an active run"):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError, match="while a run"):
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="more")
    cancelled = client.beta.threads.runs.cancel(run_id=run.id, thread_id=thread.id)
    assert cancelled.status == "cancelling"
    for _ in range(200):
        run = client.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id)
        if run.status == "cancelled":
            break
    assert run.status == "cancelled"
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="now")


def test_objects_match_the_spec_and_lists_page_like_the_sandbox(api: str) -> None:
    client = design_doc_client(api)
    raw = client.beta.assistants.with_raw_response
    made = [
        json.loads(raw.create(model="gpt-4o", name=f"a{i}").http_response.text) for i in range(3)
    ]
    for assistant in made:
        assistants_spec("AssistantObject", assistant)
    page = client.beta.assistants.list(limit=2, order="asc")
    ids = [a["id"] for a in made]
    assert [a.id for a in page.data] == ids[:2] and page.has_more
    rest = client.beta.assistants.list(limit=2, order="asc", after=ids[1])
    assert [a.id for a in rest.data] == ids[2:]
    updated = client.beta.assistants.update(ids[0], metadata={"team": "support"})
    assert updated.metadata == {"team": "support"}
    assert client.beta.assistants.delete(ids[0]).deleted
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(ids[0])

    threads = client.beta.threads.with_raw_response
    thread = json.loads(
        threads.create(messages=[{"role": "user", "content": "kept"}]).http_response.text
    )
    assistants_spec("ThreadObject", thread)
    messages = client.beta.threads.messages.with_raw_response.list(thread_id=thread["id"])
    assistants_spec("ListMessagesResponse", json.loads(messages.http_response.text))
    assert client.beta.threads.delete(thread["id"]).deleted
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread_id=thread["id"])


def test_last_messages_sends_only_the_most_recent_messages(
    bridge: BridgeServer, model: Sandbox
) -> None:
    client = design_doc_client(bridge.url)
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    words = ["one", "two", "three", "four", "five"]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": w} for w in words])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
        poll_interval_ms=10,
    )
    assert run.status == "completed"
    assert run.truncation_strategy is not None and run.truncation_strategy.last_messages == 2
    request = model.state.chat_requests[-1]
    chat_spec("CreateChatCompletionRequest", request)
    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "four"},
        {"role": "user", "content": "five"},
    ]


def test_auto_under_max_prompt_tokens_drops_the_middle_of_the_thread(
    bridge: BridgeServer, model: Sandbox
) -> None:
    client = design_doc_client(bridge.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    texts = [f"message {n} " + "x" * 30 for n in range(5)]  # 10 tokens each by the estimate
    thread = client.beta.threads.create(messages=[{"role": "user", "content": t} for t in texts])
    whole = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert whole.status == "completed"
    sent = model.state.chat_requests[-1]["messages"]
    assert [m["content"] for m in sent] == texts  # auto alone: the whole thread

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "auto"},
        max_prompt_tokens=25,
        poll_interval_ms=10,
    )
    assert run.status == "completed"
    request = model.state.chat_requests[-1]
    chat_spec("CreateChatCompletionRequest", request)
    # The first message, then the most recent that fit in 25: only the first run's reply.
    assert [m["role"] for m in request["messages"]] == ["user", "assistant"]
    assert request["messages"][0]["content"] == texts[0]


def test_a_bad_truncation_strategy_is_a_400(bridge: BridgeServer) -> None:
    client = design_doc_client(bridge.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError, match=r"truncation_strategy\.last_messages"):
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            truncation_strategy={"type": "last_messages", "last_messages": 0},
        )


def test_image_urls_reach_the_model_as_image_parts_and_image_files_are_refused(
    bridge: BridgeServer, model: Sandbox
) -> None:
    client = design_doc_client(bridge.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    image = {"url": "https://example.com/cat.png", "detail": "low"}
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": image},  # type: ignore[typeddict-item]
                ],
            }
        ]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert run.status == "completed"
    request = model.state.chat_requests[-1]
    chat_spec("CreateChatCompletionRequest", request)
    assert request["messages"][0] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": image},
        ],
    }

    with pytest.raises(openai.BadRequestError, match="serves no files") as refused:
        client.beta.threads.messages.create(
            thread_id=thread.id,
            role="user",
            content=[{"type": "image_file", "image_file": {"file_id": "file-abc"}}],
        )
    assert refused.value.code == "unsupported_content"
    assert refused.value.param == "content[0]"
    with pytest.raises(openai.BadRequestError, match="serves no files"):
        client.beta.threads.create(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_file", "image_file": {"file_id": "file-abc"}}],
                }
            ]
        )


def test_metadata_and_messages_round_trip_like_the_sandbox(api: str) -> None:
    client = design_doc_client(api)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    updated = client.beta.threads.update(thread.id, metadata={"customer": "c-1"})
    assert updated.id == thread.id and updated.metadata == {"customer": "c-1"}
    assert client.beta.threads.retrieve(thread.id).metadata == {"customer": "c-1"}

    [first] = client.beta.threads.messages.list(thread_id=thread.id).data
    second = client.beta.threads.messages.create(thread_id=thread.id, role="user", content="two")
    got = client.beta.threads.messages.retrieve(second.id, thread_id=thread.id)
    assert got.id == second.id and got.content[0].text.value == "two"  # type: ignore[union-attr]
    raw = client.beta.threads.messages.with_raw_response.update(
        second.id, thread_id=thread.id, metadata={"flag": "yes"}
    )
    assistants_spec("MessageObject", json.loads(raw.http_response.text))
    assert raw.parse().metadata == {"flag": "yes"}
    assert client.beta.threads.messages.retrieve(second.id, thread_id=thread.id).metadata == {
        "flag": "yes"
    }
    deleted = client.beta.threads.messages.delete(first.id, thread_id=thread.id)
    assert deleted.id == first.id and deleted.deleted
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(first.id, thread_id=thread.id)
    remaining = client.beta.threads.messages.list(thread_id=thread.id).data
    assert [m.id for m in remaining] == [second.id]

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert run.status == "completed"
    changed = client.beta.threads.runs.update(
        run.id, thread_id=thread.id, metadata={"ticket": "t-9"}
    )
    assert changed.id == run.id and changed.metadata == {"ticket": "t-9"}
    again = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert again.metadata == {"ticket": "t-9"} and again.status == "completed"

    [step] = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data
    raw_step = client.beta.threads.runs.steps.with_raw_response.retrieve(
        step.id, thread_id=thread.id, run_id=run.id
    )
    assistants_spec("RunStepObject", json.loads(raw_step.http_response.text))
    fetched = raw_step.parse()
    assert fetched.id == step.id and fetched.run_id == run.id
    assert fetched.type == "message_creation" and fetched.status == "completed"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.retrieve("step_missing", thread_id=thread.id, run_id=run.id)


def test_the_runs_sampling_and_the_model_key_reach_the_chat_request(
    bridge: BridgeServer, model: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys: list[str | None] = []
    dispatch = model.dispatch

    def spy(request: Request) -> object:
        if request.path == "/v1/chat/completions":
            keys.append(request.headers.get("authorization"))
        return dispatch(request)

    monkeypatch.setattr(model, "dispatch", spy)
    client = design_doc_client(bridge.url)
    assistant = client.beta.assistants.create(model="gpt-4o", temperature=0.2, top_p=0.9)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert run.status == "completed" and (run.temperature, run.top_p) == (0.2, 0.9)
    request = model.state.chat_requests[-1]
    assert (request["temperature"], request["top_p"]) == (0.2, 0.9)

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        temperature=0,  # the run's own zero, not the assistant's value
        top_p=0,
        poll_interval_ms=10,
    )
    assert run.status == "completed" and (run.temperature, run.top_p) == (0, 0)
    request = model.state.chat_requests[-1]
    chat_spec("CreateChatCompletionRequest", request)
    assert (request["temperature"], request["top_p"]) == (0, 0)
    # The key the bridge was given, not the app's own.
    assert keys == ["Bearer sk-model", "Bearer sk-model"]


def test_a_run_left_waiting_for_tool_outputs_past_its_expiry_is_expired(
    model: Sandbox, tmp_path: Path
) -> None:
    # An expiry of 0 s: the run is past expires_at as soon as it asks for tool outputs.
    with bridge_over(model, tmp_path / "bridge.db", expiry_s=0.0) as server:
        client = design_doc_client(server.url)
        assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[WEATHER])
        thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "get_weather city=Oslo"}]
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
        )
        assert run.status == "expired"
        assert run.required_action is None
        steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id)
        assert [step.status for step in steps.data] == ["expired"]
        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.submit_tool_outputs(
                run_id=run.id,
                thread_id=thread.id,
                tool_outputs=[{"tool_call_id": "call_1", "output": "{}"}],
            )
