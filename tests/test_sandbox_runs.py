"""The sandbox's runs: lifecycle, tool calls, cancel, expiry, failure, streaming, errors.

Everything goes through the real OpenAI SDK over HTTP. Lifecycle states are asserted with a
clock the test moves (exact, no timing); streaming and polling use the real clock with runs of
a few tens of milliseconds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import openai
import pytest

from aigw.sandbox import Sandbox
from tests.helpers.sandbox import (
    WEATHER,
    Collector,
    ManualClock,
    client_for,
    deduplicated,
    running,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RUN_S = 0.04  # run_duration_ms=40 in `running()`


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def frozen(clock: ManualClock) -> Iterator[Sandbox]:
    """A sandbox whose time moves only with `clock.advance`."""
    with running(clock, requires_action_expiry_s=30) as sandbox:
        yield sandbox


@pytest.fixture
def live() -> Iterator[Sandbox]:
    with running() as sandbox:
        yield sandbox


def setup(client: openai.OpenAI, text: str, tools: list | None = None) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=tools or [])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return assistant.id, thread.id


def test_a_run_goes_queued_in_progress_completed_with_the_echoed_reply(
    frozen: Sandbox, clock: ManualClock
) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "hello sandbox")
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    assert run.id.startswith("run_") and run.status == "queued" and run.usage is None

    clock.advance(0.25 * RUN_S)
    started = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert started.status == "in_progress" and started.started_at is not None

    clock.advance(RUN_S)
    done = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert done.status == "completed" and done.completed_at is not None
    assert done.expires_at is None
    assert done.usage is not None and done.usage.total_tokens == (
        done.usage.prompt_tokens + done.usage.completion_tokens
    )
    reply = client.beta.threads.messages.list(thread_id).data[0]
    assert reply.content[0].text.value == "You said: hello sandbox"
    assert (reply.role, reply.run_id, reply.assistant_id) == ("assistant", run.id, assistant_id)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data
    assert [s.type for s in steps] == ["message_creation"]
    assert steps[0].step_details.message_creation.message_id == reply.id  # type: ignore[union-attr]
    assert steps[0].id.startswith("step_") and steps[0].status == "completed"
    got = client.beta.threads.runs.steps.retrieve(steps[0].id, thread_id=thread_id, run_id=run.id)
    assert got.id == steps[0].id


def test_run_objects_carry_the_poll_after_header_and_create_and_poll_completes(
    live: Sandbox,
) -> None:
    client = client_for(live)
    assistant_id, thread_id = setup(client, "poll me")
    raw = client.beta.threads.runs.with_raw_response.create(
        thread_id=thread_id, assistant_id=assistant_id
    )
    assert raw.headers["openai-poll-after-ms"] == "10"
    run = client.beta.threads.runs.poll(raw.parse().id, thread_id=thread_id)
    assert run.status == "completed"


def test_the_tool_call_round_trip_completes_with_the_outputs(
    frozen: Sandbox, clock: ManualClock
) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "use get_weather city=Lisbon days=2", [WEATHER])
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    clock.advance(RUN_S)
    waiting = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert waiting.status == "requires_action"
    assert waiting.required_action is not None
    (call,) = waiting.required_action.submit_tool_outputs.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Lisbon", "days": 2}

    after = client.beta.threads.runs.submit_tool_outputs(
        run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
    )
    assert after.status == "queued" and after.required_action is None
    clock.advance(RUN_S)
    done = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert done.status == "completed"
    reply = client.beta.threads.messages.list(thread_id, run_id=run.id).data[0]
    assert reply.content[0].text.value == "get_weather returned sunny"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    tool_call = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert (tool_call.id, tool_call.function.output) == (call.id, "sunny")  # type: ignore[union-attr]


def test_tool_outputs_must_answer_exactly_the_pending_calls(
    frozen: Sandbox, clock: ManualClock
) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "get_weather please", [WEATHER])
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    clock.advance(RUN_S)
    call_id = (
        client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
        .required_action.submit_tool_outputs.tool_calls[0]
        .id
    )  # type: ignore[union-attr]

    for outputs in ([{"tool_call_id": "call_unknown", "output": "x"}], []):
        with pytest.raises(openai.BadRequestError) as wrong:
            client.beta.threads.runs.submit_tool_outputs(
                run.id, thread_id=thread_id, tool_outputs=outputs
            )
        assert call_id in wrong.value.body["message"]
    still = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert still.status == "requires_action"


def test_tool_outputs_for_a_run_not_waiting_for_them_answer_400(frozen: Sandbox) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "no tools here")
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    with pytest.raises(openai.BadRequestError) as early:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": "call_x", "output": "1"}]
        )
    assert early.value.body["message"] == 'Runs in status "queued" do not accept tool outputs.'


def test_a_cancelled_run_passes_through_cancelling(frozen: Sandbox, clock: ManualClock) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "a long answer to cancel")
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    clock.advance(0.5 * RUN_S)  # mid-reply: the assistant message is half written
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    assert cancelling.status == "cancelling"
    clock.advance(RUN_S)
    cancelled = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    partial = client.beta.threads.messages.list(thread_id, run_id=run.id).data[0]
    assert partial.status == "incomplete"
    assert partial.incomplete_details is not None
    assert partial.incomplete_details.reason == "run_cancelled"
    with pytest.raises(openai.BadRequestError) as again:
        client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    assert again.value.body["message"] == "Cannot cancel run with status 'cancelled'."


def test_a_run_left_in_requires_action_expires(frozen: Sandbox, clock: ManualClock) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "get_weather city=Oslo", [WEATHER])
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    clock.advance(RUN_S)
    waiting = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert waiting.status == "requires_action"
    assert waiting.expires_at == int(clock.now + 30)

    clock.advance(31)
    expired = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert expired.status == "expired" and expired.required_action is None
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data[0]
    assert step.status == "expired" and step.expired_at is not None


def test_the_expiry_can_be_set_per_run(frozen: Sandbox, clock: ManualClock) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "get_weather", [WEATHER])
    run = client.beta.threads.runs.create(
        thread_id=thread_id, assistant_id=assistant_id, metadata={"sandbox_expiry_s": "1"}
    )
    clock.advance(RUN_S + 1.5)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "expired"


def test_the_failure_marker_fails_the_run_with_last_error(
    frozen: Sandbox, clock: ManualClock
) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "please [sandbox:fail] now")
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    clock.advance(RUN_S)
    failed = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.last_error is not None and failed.last_error.code == "server_error"
    assert "scripted failure" in failed.last_error.message

    _, other = setup(client, "[sandbox:fail:rate_limit_exceeded]")
    limited = client.beta.threads.runs.create(thread_id=other, assistant_id=assistant_id)
    clock.advance(RUN_S)
    limited = client.beta.threads.runs.retrieve(limited.id, thread_id=other)
    assert limited.last_error is not None and limited.last_error.code == "rate_limit_exceeded"


def test_the_duration_can_be_set_per_run(frozen: Sandbox) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "instant")
    run = client.beta.threads.runs.create(
        thread_id=thread_id, assistant_id=assistant_id, metadata={"sandbox_run_ms": "0"}
    )
    # The clock has not moved at all, yet a zero-length run is already over.
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "completed"
    with pytest.raises(openai.BadRequestError) as bad:
        client.beta.threads.runs.create(
            thread_id=thread_id, assistant_id=assistant_id, metadata={"sandbox_run_ms": "soon"}
        )
    assert bad.value.body["param"] == "metadata.sandbox_run_ms"


def test_a_second_run_on_a_busy_thread_answers_400(frozen: Sandbox) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "busy")
    first = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    with pytest.raises(openai.BadRequestError) as busy:
        client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    assert busy.value.body["message"] == (
        f"Thread {thread_id} already has an active run {first.id}."
    )


def test_unknown_ids_around_runs_answer_404(frozen: Sandbox) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "x")
    with pytest.raises(openai.NotFoundError) as no_assistant:
        client.beta.threads.runs.create(thread_id=thread_id, assistant_id="asst_missing")
    assert no_assistant.value.body["message"] == "No assistant found with id 'asst_missing'."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id="thread_missing", assistant_id=assistant_id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve("run_missing", thread_id=thread_id)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    with pytest.raises(openai.NotFoundError):  # the right run under the wrong thread
        client.beta.threads.runs.retrieve(run.id, thread_id=client.beta.threads.create().id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.retrieve("step_missing", thread_id=thread_id, run_id=run.id)
    with pytest.raises(openai.BadRequestError) as no_assistant_id:
        client.beta.threads.runs.create(thread_id=thread_id, assistant_id="")
    assert no_assistant_id.value.body["param"] == "assistant_id"


def test_runs_are_listed_newest_first_and_their_metadata_can_change(frozen: Sandbox) -> None:
    client = client_for(frozen)
    assistant_id, thread_id = setup(client, "x")
    first = client.beta.threads.runs.create(
        thread_id=thread_id, assistant_id=assistant_id, metadata={"sandbox_run_ms": "0"}
    )
    second = client.beta.threads.runs.create(
        thread_id=thread_id, assistant_id=assistant_id, metadata={"sandbox_run_ms": "0"}
    )
    listed = client.beta.threads.runs.list(thread_id)
    assert [r.id for r in listed.data] == [second.id, first.id]
    changed = client.beta.threads.runs.update(first.id, thread_id=thread_id, metadata={"a": "b"})
    assert changed.metadata == {"a": "b"}


def test_a_run_takes_instructions_model_and_tools_from_the_assistant_unless_overridden(
    frozen: Sandbox,
) -> None:
    client = client_for(frozen)
    assistant = client.beta.assistants.create(
        model="gpt-4o", instructions="Be brief.", tools=[WEATHER]
    )
    thread = client.beta.threads.create()
    plain = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert (plain.model, plain.instructions) == ("gpt-4o", "Be brief.")
    assert [t.type for t in plain.tools] == ["function"]
    client.beta.threads.runs.cancel(plain.id, thread_id=thread.id)

    other = client.beta.threads.create()
    custom = client.beta.threads.runs.create(
        thread_id=other.id,
        assistant_id=assistant.id,
        model="gpt-4o-mini",
        additional_instructions="Use French.",
        tools=[],
        additional_messages=[{"role": "user", "content": "bonjour"}],
    )
    assert (custom.model, custom.tools) == ("gpt-4o-mini", [])
    assert custom.instructions == "Be brief.\n\nUse French."
    assert client.beta.threads.messages.list(other.id).data[0].content[0].text.value == "bonjour"


def test_create_thread_and_run_makes_both(live: Sandbox) -> None:
    client = client_for(live)
    assistant = client.beta.assistants.create(model="gpt-4o")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "both"}]}
    )
    assert run.status == "completed" and run.thread_id.startswith("thread_")
    reply = client.beta.threads.messages.list(run.thread_id).data[0]
    assert reply.content[0].text.value == "You said: both"


# -- streaming --------------------------------------------------------------------------------

TEXT_EVENTS = [
    "thread.run.created",
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


def test_streaming_a_run_delivers_the_real_events_and_the_text(live: Sandbox) -> None:
    client = client_for(live)
    text = "one two three four five six seven eight nine ten eleven"
    assistant_id, thread_id = setup(client, text)
    handler = Collector()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert deduplicated(handler.events) == TEXT_EVENTS
    assert handler.events.count("thread.message.delta") > 1
    assert handler.text == f"You said: {text}"
    final = handler.get_final_messages()[0]
    assert final.content[0].text.value == f"You said: {text}"  # type: ignore[union-attr]
    assert handler.current_run is not None and handler.current_run.status == "completed"


def test_streaming_thread_and_run_starts_with_thread_created(live: Sandbox) -> None:
    client = client_for(live)
    assistant = client.beta.assistants.create(model="gpt-4o")
    handler = Collector()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "streamed"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert deduplicated(handler.events) == ["thread.created", *TEXT_EVENTS]
    assert handler.text == "You said: streamed"


def test_streaming_stops_at_requires_action_and_resumes_after_the_outputs(live: Sandbox) -> None:
    client = client_for(live)
    assistant_id, thread_id = setup(client, "get_weather city=Rome", [WEATHER])
    first = Collector()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant_id, event_handler=first
    ) as stream:
        stream.until_done()
    assert first.events[-1] == "thread.run.requires_action"
    assert "thread.run.step.delta" in first.events
    run = first.current_run
    assert run is not None and run.required_action is not None
    call = run.required_action.submit_tool_outputs.tool_calls[0]

    second = Collector()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread_id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "19C"}],
        event_handler=second,
    ) as stream:
        stream.until_done()
    assert (
        deduplicated(second.events)
        == [
            "thread.run.step.completed",  # the tool_calls step, now with its output
            "thread.run.queued",
            *TEXT_EVENTS[2:],
        ]
    )
    assert second.text == "get_weather returned 19C"


def test_a_stream_ends_with_cancelled_when_the_run_is_cancelled(live: Sandbox) -> None:
    client = client_for(live)
    assistant_id, thread_id = setup(client, "slow")
    created = threading.Event()

    class Canceller(Collector):
        def on_event(self, event) -> None:
            super().on_event(event)
            if event.event == "thread.run.queued":
                created.set()

    handler = Canceller()

    def cancel_when_started() -> None:
        created.wait(5)
        assert handler.current_run is not None
        client.beta.threads.runs.cancel(handler.current_run.id, thread_id=thread_id)

    worker = threading.Thread(target=cancel_when_started)
    worker.start()
    with client.beta.threads.runs.stream(
        thread_id=thread_id,
        assistant_id=assistant_id,
        metadata={"sandbox_run_ms": "60000"},
        event_handler=handler,
    ) as stream:
        stream.until_done()
    worker.join(5)
    assert handler.events[-2:] == ["thread.run.cancelling", "thread.run.cancelled"]
