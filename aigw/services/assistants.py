"""Assistants: list, create, get, update, delete through the configured gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aigw.services.records import AGENT, check_writable, record, records_mirror
from aigw.services.requests import AssistantCreate, AssistantFields, ListQuery, check_ids

if TYPE_CHECKING:
    from aigw.context import AppContext


def follow_pages(first_page: Any, all_pages: bool) -> Iterator[Any]:
    """Items of one page, or of every page when `all_pages` (the SDK fetches the next ones)."""
    yield from (first_page if all_pages else first_page.data)


def list_assistants(app: AppContext, query: ListQuery, *, all_pages: bool = False) -> list[Any]:
    page = app.openai.beta.assistants.list(**query.params())
    return list(follow_pages(page, all_pages))


def create_assistant(app: AppContext, request: AssistantCreate) -> Any:
    check_writable(app)
    assistant = app.openai.beta.assistants.create(**request.params())
    record_agent(app, assistant)
    return assistant


def record_agent(app: AppContext, assistant: Any) -> None:
    """The assistant's `agents` row, owed to the remote store (services/records.py)."""
    if not records_mirror(app):
        return
    name = assistant.name or assistant.id
    record(
        app,
        AGENT,
        {
            "openai_assistant_id": assistant.id,
            "name": name,
            "instructions": assistant.instructions,
            "model": assistant.model,
        },
        what=f"the agents row of {assistant.id}",
        repair=f"record it with `aigw assistants update {assistant.id} --name {name!r}`",
    )


def get_assistant(app: AppContext, assistant_id: str) -> Any:
    check_ids(app, assistant_id=assistant_id)
    return app.openai.beta.assistants.retrieve(assistant_id)


def update_assistant(app: AppContext, assistant_id: str, request: AssistantFields) -> Any:
    """Change the assistant; its `agents` row follows (and is recorded if it was missing)."""
    check_ids(app, assistant_id=assistant_id)
    check_writable(app)
    assistant = app.openai.beta.assistants.update(assistant_id, **request.params())
    record_agent(app, assistant)
    return assistant


def delete_assistant(app: AppContext, assistant_id: str) -> Any:
    check_ids(app, assistant_id=assistant_id)
    return app.openai.beta.assistants.delete(assistant_id)
