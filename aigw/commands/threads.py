"""`aigw threads`: create, get, update, delete."""

from __future__ import annotations

from typing import Any

import typer

from aigw.commands._options import (
    CacheOptions,
    JsonOption,
    MetadataOption,
    YesOption,
    delete_confirmed,
    examples,
    parse_pairs,
    set_cache_options,
    with_bundles,
)
from aigw.context import app_context
from aigw.errors import UsageError
from aigw.render import Output

app = typer.Typer(help="Manage threads (/v1/threads).", no_args_is_help=True)


@app.command(
    "create",
    epilog=examples(
        'aigw threads create --message "Hi there"',
        "aigw threads create --agent Support --json | jq -r .id",
    ),
)
def create(
    ctx: typer.Context,
    message: list[str] | None = typer.Option(
        None, "--message", metavar="TEXT", help="A first user message; repeatable (up to 32)."
    ),
    metadata: list[str] | None = MetadataOption,
    agent: str | None = typer.Option(
        None,
        "--agent",
        metavar="NAME|ID",
        help="Record the thread as a conversation of this agent in the store "
        "(agents.id, name or asst_… ID).",
    ),
    user: str | None = typer.Option(
        None, "--user", metavar="UUID", help="The conversation's user (default AIGW_USER_ID)."
    ),
    json: bool = JsonOption,
) -> None:
    """Create a thread, optionally with first messages."""
    from aigw.render.assistants_views import thread_fields
    from aigw.services.requests import MessageCreate, ThreadCreate
    from aigw.services.threads import create_thread

    request = ThreadCreate(
        messages=[MessageCreate(role="user", content=text) for text in message]
        if message
        else None,
        metadata=parse_pairs(metadata),
    )
    if user is not None and agent is None:
        raise UsageError("--user only applies with --agent")
    thread = create_thread(app_context(ctx), request, agent=agent, user=user)
    Output(json).record(thread, thread_fields(thread))


@app.command("get", epilog=examples("aigw threads get thread_abc123"))
@with_bundles
def get(
    ctx: typer.Context, thread_id: str, json: bool = JsonOption, cache: Any = CacheOptions
) -> None:
    """Show one thread."""
    from aigw.render.assistants_views import thread_fields
    from aigw.services.threads import get_thread

    app_ctx = app_context(ctx)
    set_cache_options(app_ctx, cache)
    thread = get_thread(app_ctx, thread_id)
    Output(json).record(thread, thread_fields(thread))


@app.command("update", epilog=examples("aigw threads update thread_abc123 --metadata ticket=43"))
def update(
    ctx: typer.Context,
    thread_id: str,
    metadata: list[str] | None = MetadataOption,
    agent: str | None = typer.Option(
        None,
        "--agent",
        metavar="NAME|ID",
        help="Record the thread as a conversation of this agent in the store.",
    ),
    user: str | None = typer.Option(
        None, "--user", metavar="UUID", help="The conversation's user (default AIGW_USER_ID)."
    ),
    json: bool = JsonOption,
) -> None:
    """Replace a thread's metadata. Or record it as an agent's conversation (--agent)."""
    from aigw.render.assistants_views import thread_fields
    from aigw.services.requests import ThreadUpdate
    from aigw.services.threads import update_thread

    request = ThreadUpdate(metadata=parse_pairs(metadata))
    if user is not None and agent is None:
        raise UsageError("--user only applies with --agent")
    if not request.params() and agent is None:
        raise UsageError("nothing to update: give --metadata KEY=VALUE or --agent")
    thread = update_thread(app_context(ctx), thread_id, request, agent=agent, user=user)
    Output(json).record(thread, thread_fields(thread))


@app.command("delete", epilog=examples("aigw threads delete thread_abc123 --yes"))
def delete(
    ctx: typer.Context, thread_id: str, yes: bool = YesOption, json: bool = JsonOption
) -> None:
    """Delete a thread and its messages and runs (asks first unless --yes)."""
    from aigw.services.threads import delete_thread

    delete_confirmed(ctx, "thread", thread_id, delete_thread, yes=yes, json=json)
