"""The bridge's state survives its process, and two instances share it through Postgres."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from aigw.bridge.service import INTERRUPTED
from aigw.sandbox import Sandbox
from tests.helpers.bridge import bridge_over, design_doc_client
from tests.helpers.sandbox import WEATHER, running

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# A bridge process that dies (os._exit, as a kill would) while its run waits on the model.
DIES_MID_RUN = textwrap.dedent(
    """
    import os, sys, time
    import openai
    from aigw.bridge.serve import BridgeServer

    server = BridgeServer(sys.argv[1], sys.argv[2], "sk-model").start()
    client = openai.OpenAI(api_key="sk-test", base_url=server.url, max_retries=0)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    for _ in range(500):
        if client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress":
            break
        time.sleep(0.01)
    print(thread.id, run.id, flush=True)
    os._exit(1)
    """
)


def test_a_restart_keeps_everything_acknowledged(model_url: str, tmp_path: Path) -> None:
    database = tmp_path / "bridge.db"
    with bridge_over(model_url, database) as first:
        client = design_doc_client(first.url)
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        done = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
        )
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="get_weather")
        waiting = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
        )
    assert waiting.status == "requires_action" and waiting.required_action is not None
    with bridge_over(model_url, database) as second:
        client = design_doc_client(second.url)
        assert client.beta.assistants.retrieve(assistant.id).tools[0].type == "function"
        runs = client.beta.threads.runs.list(thread_id=thread.id, order="asc").data
        assert [(r.id, r.status) for r in runs] == [
            (done.id, "completed"),
            (waiting.id, "requires_action"),
        ]
        call = waiting.required_action.submit_tool_outputs.tool_calls[0]
        finished = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=waiting.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "rain"}],
            poll_interval_ms=10,
        )
        assert finished.status == "completed"
        texts = [
            m.content[0].text.value  # type: ignore[union-attr]
            for m in client.beta.threads.messages.list(thread_id=thread.id, order="asc").data
        ]
    assert texts == ["hello", "You said: hello", "get_weather", "get_weather returned rain"]


def test_a_run_in_progress_when_the_bridge_died_is_failed_as_interrupted(tmp_path: Path) -> None:
    database = tmp_path / "bridge.db"
    with running() as slow:
        slow.faults.add("POST /v1/chat/completions delay=30000")
        died = subprocess.run(
            [sys.executable, "-c", DIES_MID_RUN, str(database), slow.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert died.returncode == 1, died.stderr
        thread_id, run_id = died.stdout.split()
        with bridge_over(slow, database) as restarted:
            client = design_doc_client(restarted.url)
            run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
            assert run.status == "failed" and run.last_error is not None
            assert (run.last_error.code, run.last_error.message) == ("server_error", INTERRUPTED)
            # The thread is free again.
            client.beta.threads.messages.create(thread_id=thread_id, role="user", content="again")


def test_a_stop_waits_for_runs_then_fails_the_rest_and_ends_their_streams(tmp_path: Path) -> None:
    database = tmp_path / "bridge.db"
    with running() as slow:
        slow.faults.add("POST /v1/chat/completions delay=30000")
        with bridge_over(slow, database, drain_s=0.2) as bridge:
            client = design_doc_client(bridge.url)
            assistant = client.beta.assistants.create(model="gpt-4o")
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
            events: list[str] = []
            with client.beta.threads.runs.stream(
                thread_id=thread.id, assistant_id=assistant.id
            ) as stream:
                for event in stream:
                    events.append(event.event)
                    if event.event == "thread.run.in_progress":
                        with ThreadPoolExecutor(1) as pool:
                            pool.submit(bridge.stop)  # while this stream waits on the model
            run_id = stream.current_run.id if stream.current_run else ""
        assert events[-1] == "thread.run.failed"
        with bridge_over(slow, database) as restarted:
            run = design_doc_client(restarted.url).beta.threads.runs.retrieve(
                run_id, thread_id=thread.id
            )
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.message == INTERRUPTED


@pytest.fixture
def model_url(sandbox: Sandbox) -> str:
    return sandbox.url


@pytest.mark.postgres
def test_two_instances_serve_the_same_threads_through_postgres(
    migrated_db: str, sandbox: Sandbox
) -> None:
    with bridge_over(sandbox, migrated_db) as a, bridge_over(sandbox, migrated_db) as b:
        on_a, on_b = design_doc_client(a.url), design_doc_client(b.url)
        assistant = on_a.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
        thread = on_a.beta.threads.create(messages=[{"role": "user", "content": "get_weather"}])
        run = on_b.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
        )
        assert run.status == "requires_action" and run.required_action is not None
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        on_a.beta.threads.runs.submit_tool_outputs(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "ok"}],
        )
        done = on_b.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=10)
        assert done.status == "completed"
        reply = on_b.beta.threads.messages.list(thread_id=thread.id).data[0]
        assert reply.content[0].text.value == "get_weather returned ok"  # type: ignore[union-attr]


@pytest.mark.postgres
def test_two_instances_racing_for_a_thread_get_one_active_run(migrated_db: str) -> None:
    with running() as slow:
        slow.faults.add("POST /v1/chat/completions delay=300")
        with bridge_over(slow, migrated_db) as a, bridge_over(slow, migrated_db) as b:
            clients = [design_doc_client(a.url), design_doc_client(b.url)]
            assistant = clients[0].beta.assistants.create(model="gpt-4o")
            thread = clients[0].beta.threads.create(messages=[{"role": "user", "content": "x"}])

            def start(client: openai.OpenAI) -> str:
                try:
                    return client.beta.threads.runs.create(
                        thread_id=thread.id, assistant_id=assistant.id
                    ).status
                except openai.BadRequestError as error:
                    return error.message

            with ThreadPoolExecutor(8) as pool:
                outcomes = list(pool.map(start, clients * 4))
            assert outcomes.count("queued") == 1
            assert all("already has an active run" in o for o in outcomes if o != "queued")


@pytest.mark.postgres
def test_a_cancel_on_one_instance_stops_the_run_another_instance_is_making(
    migrated_db: str,
) -> None:
    with running() as slow:
        slow.faults.add("POST /v1/chat/completions delay=1500 x1")
        with bridge_over(slow, migrated_db) as a, bridge_over(slow, migrated_db) as b:
            on_a, on_b = design_doc_client(a.url), design_doc_client(b.url)
            assistant = on_a.beta.assistants.create(model="gpt-4o")
            thread = on_a.beta.threads.create(messages=[{"role": "user", "content": "slow"}])
            run = on_a.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
            cancelling = on_b.beta.threads.runs.cancel(run_id=run.id, thread_id=thread.id)
            assert cancelling.status == "cancelling"
            # A's leg finds the cancel when it next writes, and finishes it.
            done = on_b.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
            assert done.status == "cancelled"
            assert on_a.beta.threads.messages.list(thread_id=thread.id).data[0].role == "user"
