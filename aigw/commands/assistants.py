"""`aigw assistants`: list, create, get, update, delete."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aigw.commands._options import (
    AllOption,
    Bundle,
    CacheOptions,
    JsonOption,
    MetadataOption,
    PageOptions,
    YesOption,
    delete_confirmed,
    examples,
    parse_pairs,
    read_json,
    read_text,
    set_cache_options,
    with_bundles,
)
from aigw.context import app_context
from aigw.errors import UsageError
from aigw.render import Column, Output
from aigw.render.output import fmt_time

if TYPE_CHECKING:
    from aigw.services.requests import ListQuery

app = typer.Typer(help="Manage assistants (/v1/assistants).", no_args_is_help=True)

ASSISTANT_COLUMNS = [
    Column("id", lambda a: a.id, style="cyan", key=True),
    Column("name", lambda a: a.name),
    Column("model", lambda a: a.model),
    Column("tools", lambda a: ", ".join(tool_label(t) for t in a.tools)),
    Column("created", lambda a: fmt_time(a.created_at), style="dim", no_wrap=True),
]


def tool_label(tool: Any) -> str:
    function = getattr(tool, "function", None)
    return f"function:{function.name}" if function is not None else tool.type


def parse_tool(spec: str) -> dict[str, Any]:
    """`code_interpreter`, `file_search` or `function:FILE.json` → the API's tool object."""
    if spec in ("code_interpreter", "file_search"):
        return {"type": spec}
    kind, sep, path = spec.partition(":")
    if kind != "function" or not sep or not path:
        raise UsageError(
            f"--tool expects code_interpreter, file_search or function:FILE.json, got {spec!r}"
        )
    data = read_json(Path(path), "--tool")
    function = data.get("function", data) if isinstance(data, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise UsageError(f"--tool: {path} must be a JSON object with a function 'name'")
    return {"type": "function", "function": function}


def _assistant_fields(
    name: str | None = typer.Option(None, "--name", help="Up to 256 characters."),
    description: str | None = typer.Option(None, "--description", help="Up to 512 characters."),
    instructions: str | None = typer.Option(None, "--instructions", help="System instructions."),
    instructions_file: Path | None = typer.Option(
        None, "--instructions-file", help="Read instructions from a file ('-' for stdin)."
    ),
    tool: list[str] | None = typer.Option(
        None,
        "--tool",
        metavar="code_interpreter|file_search|function:FILE.json",
        help="A tool; repeatable.",
    ),
    metadata: list[str] | None = MetadataOption,
    temperature: float | None = typer.Option(None, "--temperature", help="0–2."),
    top_p: float | None = typer.Option(None, "--top-p", help="0–1."),
) -> dict[str, Any]:
    if instructions is not None and instructions_file is not None:
        raise UsageError("give --instructions or --instructions-file, not both")
    if instructions_file is not None:
        instructions = read_text(instructions_file, "--instructions-file")
    return {
        "name": name,
        "description": description,
        "instructions": instructions,
        "tools": [parse_tool(t) for t in tool] if tool else None,
        "metadata": parse_pairs(metadata),
        "temperature": temperature,
        "top_p": top_p,
    }


# What create and update share: every field of an assistant but its model.
AssistantOptions: Any = Bundle(_assistant_fields)


@app.command(
    "list",
    epilog=examples(
        "aigw assistants list --limit 20",
        "aigw assistants list | cut -f1",
        "aigw assistants list --all --json",
    ),
)
@with_bundles
def list_(
    ctx: typer.Context,
    query: ListQuery = PageOptions,
    all_pages: bool = AllOption,
    json: bool = JsonOption,
    cache: dict[str, Any] = CacheOptions,
) -> None:
    """List assistants, newest first."""
    from aigw.services.assistants import list_assistants

    app_ctx = app_context(ctx)
    set_cache_options(app_ctx, cache)
    Output(json).fetched_rows(
        lambda: list_assistants(app_ctx, query, all_pages=all_pages),
        ASSISTANT_COLUMNS,
        all_pages=all_pages,
    )


@app.command(
    "create",
    epilog=examples(
        "aigw assistants create --model gpt-4o --name Support --instructions-file prompt.md",
        "aigw assistants create --model gpt-4o --tool function:get_weather.json --json | jq -r .id",
    ),
)
@with_bundles
def create(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="Model ID, e.g. gpt-4o."),
    fields: dict[str, Any] = AssistantOptions,
    json: bool = JsonOption,
) -> None:
    """Create an assistant."""
    from aigw.services.assistants import create_assistant
    from aigw.services.requests import AssistantCreate

    assistant = create_assistant(app_context(ctx), AssistantCreate(model=model, **fields))
    Output(json).record(assistant)


@app.command(
    "get",
    epilog=examples(
        "aigw assistants get asst_abc123", "aigw assistants get asst_abc123 --no-cache"
    ),
)
@with_bundles
def get(
    ctx: typer.Context,
    assistant_id: str,
    json: bool = JsonOption,
    cache: dict[str, Any] = CacheOptions,
) -> None:
    """Show one assistant."""
    from aigw.services.assistants import get_assistant

    app_ctx = app_context(ctx)
    set_cache_options(app_ctx, cache)
    Output(json).record(get_assistant(app_ctx, assistant_id))


@app.command(
    "update",
    epilog=examples("aigw assistants update asst_abc123 --temperature 0.3 --metadata team=ops"),
)
@with_bundles
def update(
    ctx: typer.Context,
    assistant_id: str,
    model: str | None = typer.Option(None, "--model", help="Model ID."),
    fields: dict[str, Any] = AssistantOptions,
    json: bool = JsonOption,
) -> None:
    """Change an assistant; only the options given are sent."""
    from aigw.services.assistants import update_assistant
    from aigw.services.requests import AssistantFields

    request = AssistantFields(model=model, **fields)
    if not request.params():
        raise UsageError("nothing to update: give at least one option")
    Output(json).record(update_assistant(app_context(ctx), assistant_id, request))


@app.command("delete", epilog=examples("aigw assistants delete asst_abc123 --yes"))
def delete(
    ctx: typer.Context, assistant_id: str, yes: bool = YesOption, json: bool = JsonOption
) -> None:
    """Delete an assistant (asks first unless --yes)."""
    from aigw.services.assistants import delete_assistant

    delete_confirmed(ctx, "assistant", assistant_id, delete_assistant, yes=yes, json=json)
