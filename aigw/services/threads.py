"""Threads: create (optionally linked to an agent as a conversation), get, update, delete."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aigw.errors import UsageError
from aigw.services.messages import mirror_messages
from aigw.services.records import (
    CONVERSATION,
    check_writable,
    note_unrecorded,
    record,
    records_mirror,
)
from aigw.services.requests import MessageListQuery, ThreadCreate, ThreadUpdate, check_ids

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
    """Create a thread; with `agent`, also record a conversation for it in the store.

    The agent and the user are checked before anything is sent; after the thread exists,
    nothing fails the command (services/records.py)."""
    agent_id = user_id = None
    check_writable(app)
    if agent is not None:
        user_id = conversation_user(app, user)
        if records_mirror(app):
            agent_id = known_agent_and_user(app, agent, user_id)
        else:
            app.unrecorded.append(
                "the conversation was not recorded: no remote store is configured "
                "(set SUPABASE_DB_URL or DATABASE_URL, or SUPABASE_URL and "
                "SUPABASE_SERVICE_ROLE_KEY, to keep conversations)"
            )
    thread = app.openai.beta.threads.create(**request.params())
    if agent_id is not None and user_id is not None:
        record_conversation(app, thread.id, agent_id, user_id)
    if request.messages and records_mirror(app):
        # The thread object does not carry its messages' IDs; the store needs them.
        from aigw.services.messages import list_messages

        query = MessageListQuery(order="asc", limit=100)
        try:
            messages = list_messages(app, thread.id, query, all_pages=True)
        except Exception as exc:
            note_unrecorded(
                app,
                f"the first messages of {thread.id}",
                exc,
                f"record them with `aigw messages get {thread.id} MESSAGE_ID` for each",
            )
        else:
            mirror_messages(app, thread.id, messages)
    return thread


def known_agent_and_user(app: AppContext, agent: str, user_id: str) -> str:
    """The agents.id of `agent`; refuses (nothing sent yet) an unknown agent or user."""
    mirror = app.mirror
    assert mirror is not None
    agent_id = mirror.find_agent(agent)
    if agent_id is None:
        raise UsageError(
            f"no agent {agent!r} in the store",
            hint="give an agents.id, a name or an asst_… ID; `aigw assistants create` records one",
        )
    if not mirror.user_exists(user_id):
        raise UsageError(
            f"no user {user_id} in auth.users: a conversation must belong to one",
            hint="give --user (or AIGW_USER_ID) the id of an existing user",
        )
    return agent_id


def record_conversation(app: AppContext, thread_id: str, agent_id: str, user_id: str) -> None:
    record(
        app,
        CONVERSATION,
        {"agent_id": agent_id, "user_id": user_id, "openai_thread_id": thread_id},
        what=f"the conversation of {thread_id}",
        repair=f"record it with `aigw threads update {thread_id} --agent {agent_id} "
        f"--user {user_id}`",
    )


def get_thread(app: AppContext, thread_id: str) -> Any:
    check_ids(app, thread_id=thread_id)
    return app.openai.beta.threads.retrieve(thread_id)


def update_thread(
    app: AppContext,
    thread_id: str,
    request: ThreadUpdate,
    *,
    agent: str | None = None,
    user: str | None = None,
) -> Any:
    """Change the thread's metadata; with `agent`, record it as a conversation of that agent
    (the repair for a `threads create --agent` whose conversation was not recorded)."""
    check_ids(app, thread_id=thread_id)
    agent_id = user_id = None
    if agent is not None:
        if not records_mirror(app):
            raise UsageError("--agent needs a remote store to record the conversation in")
        user_id = conversation_user(app, user)
        agent_id = known_agent_and_user(app, agent, user_id)
    check_writable(app)
    if request.params():
        thread = app.openai.beta.threads.update(thread_id, **request.params())
    else:
        thread = app.openai.beta.threads.retrieve(thread_id)
    if agent_id is not None and user_id is not None:
        record_conversation(app, thread.id, agent_id, user_id)
    return thread


def delete_thread(app: AppContext, thread_id: str) -> Any:
    check_ids(app, thread_id=thread_id)
    return app.openai.beta.threads.delete(thread_id)
