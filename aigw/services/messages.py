"""Messages of a thread: create, list, get; and their mirror rows in the remote store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aigw.common.messages import message_text
from aigw.services.assistants import follow_pages
from aigw.services.records import MESSAGE, check_writable, record, records_mirror
from aigw.services.requests import MessageCreate, MessageListQuery, check_ids

if TYPE_CHECKING:
    from aigw.context import AppContext


def mirror_messages(app: AppContext, thread_id: str, messages: Iterable[Any]) -> None:
    """Queue messages for the remote store's `messages` table (skipped without a store)."""
    if not records_mirror(app):
        return
    for message in messages:
        record(
            app,
            MESSAGE,
            {
                "openai_thread_id": thread_id,
                "openai_message_id": message.id,
                "role": message.role,
                "content": message_text(message),
            },
            what=f"the messages row of {message.id}",
            repair=f"record it with `aigw messages get {thread_id} {message.id}`",
        )


def create_message(app: AppContext, thread_id: str, request: MessageCreate) -> Any:
    check_ids(app, thread_id=thread_id)
    check_writable(app)
    message = app.openai.beta.threads.messages.create(thread_id, **request.params())
    mirror_messages(app, thread_id, [message])
    return message


def list_messages(
    app: AppContext, thread_id: str, query: MessageListQuery, *, all_pages: bool = False
) -> list[Any]:
    check_ids(app, thread_id=thread_id, run_id=query.run_id)
    page = app.openai.beta.threads.messages.list(thread_id, **query.params())
    return list(follow_pages(page, all_pages))


def run_messages(app: AppContext, thread_id: str, run_id: str) -> list[Any]:
    """The messages a run created, oldest first (the assistant's reply)."""
    query = MessageListQuery(run_id=run_id, order="asc", limit=100)
    return list_messages(app, thread_id, query, all_pages=True)


def get_message(app: AppContext, thread_id: str, message_id: str) -> Any:
    check_ids(app, thread_id=thread_id, message_id=message_id)
    message = app.openai.beta.threads.messages.retrieve(message_id, thread_id=thread_id)
    mirror_messages(app, thread_id, [message])  # the copy follows (or repairs) the original
    return message
