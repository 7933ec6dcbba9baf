"""`aigw messages`: create, list, get — the text of a thread's messages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aigw.commands._options import (
    AllOption,
    JsonOption,
    MetadataOption,
    PageOptions,
    examples,
    parse_pairs,
    read_text,
    with_bundles,
)
from aigw.context import app_context
from aigw.errors import UsageError
from aigw.render import Output

if TYPE_CHECKING:
    from aigw.services.requests import ListQuery

app = typer.Typer(help="Messages of a thread (/v1/threads/{id}/messages).", no_args_is_help=True)


def message_content(content: str | None, content_file: Path | None, source: str | None) -> str:
    """Exactly one of --content, --content-file, or `-` (stdin)."""
    if source is not None and source != "-":
        raise UsageError(
            f"the argument {source!r} is not a text source: use --content, --content-file or -"
        )
    given = [v for v in (content, content_file, source) if v is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --content TEXT, --content-file FILE or - (stdin)")
    if content is not None:
        return content
    path = content_file if content_file is not None else Path("-")
    option = "--content-file" if content_file is not None else "stdin"
    # As the shell's $(…) does: the newline `echo` and editors end a file with is not content.
    return read_text(path, option).rstrip("\r\n")


@app.command(
    "create",
    epilog=examples(
        'aigw messages create thread_abc123 --content "What is my balance?"',
        'echo "from a pipe" | aigw messages create thread_abc123 -',
    ),
)
def create(
    ctx: typer.Context,
    thread_id: str,
    source: str | None = typer.Argument(None, metavar="[-]", help="'-' reads the text from stdin."),
    content: str | None = typer.Option(None, "--content", help="The message text."),
    content_file: Path | None = typer.Option(
        None, "--content-file", help="Read the text from a file ('-' for stdin)."
    ),
    role: str = typer.Option("user", "--role", help="user or assistant."),
    metadata: list[str] | None = MetadataOption,
    json: bool = JsonOption,
) -> None:
    """Add a message to a thread."""
    from aigw.render.assistants_views import message_fields
    from aigw.services.messages import create_message
    from aigw.services.requests import MessageCreate

    request = MessageCreate(
        role=role,
        content=message_content(content, content_file, source),
        metadata=parse_pairs(metadata),
    )
    message = create_message(app_context(ctx), thread_id, request)
    Output(json).record(message, message_fields(message))


@app.command(
    "list",
    epilog=examples(
        "aigw messages list thread_abc123",
        "aigw messages list thread_abc123 --run run_abc123 --json",
    ),
)
@with_bundles
def list_(
    ctx: typer.Context,
    thread_id: str,
    page: ListQuery = PageOptions,
    run: str | None = typer.Option(None, "--run", metavar="RUN_ID", help="Only this run's."),
    all_pages: bool = AllOption,
    json: bool = JsonOption,
) -> None:
    """List a thread's messages, newest first."""
    from aigw.render.assistants_views import MESSAGE_COLUMNS
    from aigw.services.messages import list_messages
    from aigw.services.requests import MessageListQuery

    query = MessageListQuery(**dict(page), run_id=run)
    Output(json).fetched_rows(
        lambda: list_messages(app_context(ctx), thread_id, query, all_pages=all_pages),
        MESSAGE_COLUMNS,
        all_pages=all_pages,
    )


@app.command("get", epilog=examples("aigw messages get thread_abc123 msg_abc123"))
def get(ctx: typer.Context, thread_id: str, message_id: str, json: bool = JsonOption) -> None:
    """Show one message."""
    from aigw.render.assistants_views import message_fields
    from aigw.services.messages import get_message

    message = get_message(app_context(ctx), thread_id, message_id)
    Output(json).record(message, message_fields(message))
