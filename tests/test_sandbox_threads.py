"""The sandbox's threads and messages, driven by the real OpenAI SDK over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from aigw.sandbox import Sandbox
from tests.helpers.sandbox import client_for, raw_post, running

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def server() -> Iterator[Sandbox]:
    with running() as sandbox:
        yield sandbox


@pytest.fixture
def client(server: Sandbox) -> openai.OpenAI:
    return client_for(server)


def texts(messages) -> list[str]:
    return [m.content[0].text.value for m in messages]


def test_a_thread_created_with_messages_lists_them_newest_first(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "second"},
        ],
        metadata={"team": "ops"},
    )
    assert thread.id.startswith("thread_")
    assert thread.metadata == {"team": "ops"}

    listed = client.beta.threads.messages.list(thread.id)
    assert texts(listed.data) == ["second", "first"]
    assert [m.role for m in listed.data] == ["assistant", "user"]
    assert all(m.id.startswith("msg_") and m.thread_id == thread.id for m in listed.data)


def test_string_and_part_content_come_back_in_the_api_shape(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    plain = client.beta.threads.messages.create(thread.id, role="user", content="hi")
    parts = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ],
    )
    assert plain.content[0].model_dump() == {
        "type": "text",
        "text": {"value": "hi", "annotations": []},
    }
    assert [p.type for p in parts.content] == ["text", "image_url"]
    assert plain.assistant_id is None and plain.run_id is None and plain.attachments == []


def test_messages_page_with_limit_after_and_before(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}").id
        for i in range(5)
    ]
    first = client.beta.threads.messages.list(thread.id, limit=2, order="asc")
    assert [m.id for m in first.data] == ids[:2] and first.has_more is True
    second = client.beta.threads.messages.list(thread.id, limit=2, order="asc", after=ids[1])
    assert [m.id for m in second.data] == ids[2:4]
    before = client.beta.threads.messages.list(thread.id, order="asc", before=ids[2])
    assert [m.id for m in before.data] == ids[:2] and before.has_more is False
    everything = client.beta.threads.messages.list(thread.id, limit=2)
    assert [m.id for m in everything] == ids[::-1]  # the SDK follows the pages


def test_messages_filter_by_run_id(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "echo me"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    of_run = client.beta.threads.messages.list(thread.id, run_id=run.id)
    assert texts(of_run.data) == ["You said: echo me"]
    assert of_run.data[0].assistant_id == assistant.id
    assert len(client.beta.threads.messages.list(thread.id).data) == 2


def test_a_thread_and_a_message_can_be_modified_and_deleted(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    message = client.beta.threads.messages.list(thread.id).data[0]

    assert client.beta.threads.update(thread.id, metadata={"k": "v"}).metadata == {"k": "v"}
    changed = client.beta.threads.messages.update(
        message.id, thread_id=thread.id, metadata={"a": "b"}
    )
    assert changed.metadata == {"a": "b"}
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).metadata == {
        "a": "b"
    }

    gone = client.beta.threads.messages.delete(message.id, thread_id=thread.id)
    assert (gone.id, gone.object, gone.deleted) == (message.id, "thread.message.deleted", True)
    deleted = client.beta.threads.delete(thread.id)
    assert (deleted.object, deleted.deleted) == ("thread.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)


def test_unknown_threads_and_messages_answer_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.threads.retrieve("thread_nope")
    assert missing.value.body["message"] == "No thread found with id 'thread_nope'."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list("thread_nope")

    one = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    other = client.beta.threads.create()
    message = client.beta.threads.messages.list(one.id).data[0]
    with pytest.raises(openai.NotFoundError):  # a message is found only in its own thread
        client.beta.threads.messages.retrieve(message.id, thread_id=other.id)


def test_bad_messages_answer_400_naming_the_field(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as bad_role:
        client.beta.threads.messages.create(thread.id, role="system", content="x")  # type: ignore[arg-type]
    assert bad_role.value.body["param"] == "role"
    with pytest.raises(openai.BadRequestError) as empty:
        client.beta.threads.messages.create(thread.id, role="user", content="")
    assert empty.value.body["param"] == "content"
    with pytest.raises(openai.BadRequestError) as nested:
        client.beta.threads.create(messages=[{"role": "user"}])  # type: ignore[typeddict-item]
    assert nested.value.body["param"] == "messages[0].content"


def test_bad_json_answers_400_in_the_api_error_shape(server: Sandbox) -> None:
    status, body = raw_post(server, "/threads", b"{not json")
    assert status == 400
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"


def test_a_message_cannot_be_added_while_a_run_is_active(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, metadata={"sandbox_run_ms": "60000"}
    )
    with pytest.raises(openai.BadRequestError) as busy:
        client.beta.threads.messages.create(thread.id, role="user", content="more")
    assert busy.value.body["message"] == (
        f"Can't add messages to {thread.id} while a run {run.id} is active."
    )
