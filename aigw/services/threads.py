"""Threads: create (optionally linked to an agent as a conversation), get, update, delete."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aigw.errors import UsageError
from aigw.services.messages import mirror_messages, mirror_of
from aigw.services.requests import MessageListQuery, ThreadCreate, ThreadUpdate, check_id

if TYPE_CHECKING:
    from aigw.context import AppContext


def conversation_user(app: AppContext, user: str | None) -> str:
    """The user a conversation belongs to: --user, else AIGW_USER_ID; it must be a UUID
    because `conversations.user_id` is one."""
    value = user or app.settings.user_id
    if not value:
        raise UsageError(
            "--agent needs a user: give --user UUID or set AIGW_USER_ID",
        )
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UsageError(f"invalid user id: {value!r} is not a UUID") from None


def create_thread(
    app: AppContext,
    request: ThreadCreate,
    *,
    agent: str | None = None,
    user: str | None = None,
) -> Any:
    """Create a thread; with `agent`, also record a conversation for it in the store."""
    agent_id = None
    user_id = None
    if agent is not None:
        user_id = conversation_user(app, user)  # checked before anything is sent
        mirror = mirror_of(app)
        if mirror is not None:
            agent_id = mirror.find_agent(agent)
            if agent_id is None:
                raise UsageError(
                    f"no agent {agent!r} in the store",
                    hint="give an agents.id, a name or an asst_… ID; "
                    "`aigw assistants create` records one",
                )
    thread = app.openai.beta.threads.create(**request.params())
    mirror = mirror_of(app)
    if mirror is None:
        return thread
    if agent_id is not None and user_id is not None:
        mirror.insert_conversation(agent_id=agent_id, user_id=user_id, openai_thread_id=thread.id)
    if request.messages:
        # The thread object does not carry its messages' IDs; the store needs them.
        from aigw.services.messages import list_messages

        query = MessageListQuery(order="asc", limit=100)
        mirror_messages(app, thread.id, list_messages(app, thread.id, query, all_pages=True))
    return thread


def get_thread(app: AppContext, thread_id: str) -> Any:
    check_id(thread_id, "thread_id", enabled=app.settings.check_id_prefixes)
    return app.openai.beta.threads.retrieve(thread_id)


def update_thread(app: AppContext, thread_id: str, request: ThreadUpdate) -> Any:
    check_id(thread_id, "thread_id", enabled=app.settings.check_id_prefixes)
    return app.openai.beta.threads.update(thread_id, **request.params())


def delete_thread(app: AppContext, thread_id: str) -> Any:
    check_id(thread_id, "thread_id", enabled=app.settings.check_id_prefixes)
    return app.openai.beta.threads.delete(thread_id)
