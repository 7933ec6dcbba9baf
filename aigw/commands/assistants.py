"""`aigw assistants`: list, create, get, update, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from aigw.commands._options import (
    AfterOption,
    AllOption,
    BeforeOption,
    JsonOption,
    LimitOption,
    MaxAgeOption,
    MetadataOption,
    NoCacheOption,
    OrderOption,
    VerboseOption,
    YesOption,
    delete_confirmed,
    examples,
    parse_pairs,
    read_json,
    read_text,
    set_cache_options,
)
from aigw.context import app_context
from aigw.errors import UsageError
from aigw.render import Column, Output
from aigw.render.output import fmt_time

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


def fields(
    *,
    model: str | None,
    name: str | None,
    description: str | None,
    instructions: str | None,
    instructions_file: Path | None,
    tools: list[str] | None,
    metadata: list[str] | None,
    temperature: float | None,
    top_p: float | None,
) -> dict[str, Any]:
    if instructions is not None and instructions_file is not None:
        raise UsageError("give --instructions or --instructions-file, not both")
    if instructions_file is not None:
        instructions = read_text(instructions_file, "--instructions-file")
    return {
        "model": model,
        "name": name,
        "description": description,
        "instructions": instructions,
        "tools": [parse_tool(t) for t in tools] if tools else None,
        "metadata": parse_pairs(metadata),
        "temperature": temperature,
        "top_p": top_p,
    }


NameOption = typer.Option(None, "--name", help="Up to 256 characters.")
DescriptionOption = typer.Option(None, "--description", help="Up to 512 characters.")
InstructionsOption = typer.Option(None, "--instructions", help="System instructions.")
InstructionsFileOption = typer.Option(
    None, "--instructions-file", help="Read instructions from a file ('-' for stdin)."
)
ToolOption = typer.Option(
    None,
    "--tool",
    metavar="code_interpreter|file_search|function:FILE.json",
    help="A tool; repeatable.",
)
TemperatureOption = typer.Option(None, "--temperature", help="0–2.")
TopPOption = typer.Option(None, "--top-p", help="0–1.")


@app.command(
    "list",
    epilog=examples(
        "aigw assistants list --limit 20",
        "aigw assistants list | cut -f1",
        "aigw assistants list --all --json",
    ),
)
def list_(
    ctx: typer.Context,
    limit: int | None = LimitOption,
    order: str | None = OrderOption,
    after: str | None = AfterOption,
    before: str | None = BeforeOption,
    all_pages: bool = AllOption,
    json: bool = JsonOption,
    no_cache: bool = NoCacheOption,
    max_age: str | None = MaxAgeOption,
    verbose: bool = VerboseOption,
) -> None:
    """List assistants, newest first."""
    from aigw.services.assistants import list_assistants
    from aigw.services.requests import ListQuery

    query = ListQuery(limit=limit, order=order, after=after, before=before)
    app_ctx = app_context(ctx)
    set_cache_options(app_ctx, no_cache=no_cache, max_age=max_age, verbose=verbose)
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
def create(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="Model ID, e.g. gpt-4o."),
    name: str | None = NameOption,
    description: str | None = DescriptionOption,
    instructions: str | None = InstructionsOption,
    instructions_file: Path | None = InstructionsFileOption,
    tool: list[str] | None = ToolOption,
    metadata: list[str] | None = MetadataOption,
    temperature: float | None = TemperatureOption,
    top_p: float | None = TopPOption,
    json: bool = JsonOption,
) -> None:
    """Create an assistant."""
    from aigw.services.assistants import create_assistant
    from aigw.services.requests import AssistantCreate

    request = AssistantCreate(
        **fields(
            model=model,
            name=name,
            description=description,
            instructions=instructions,
            instructions_file=instructions_file,
            tools=tool,
            metadata=metadata,
            temperature=temperature,
            top_p=top_p,
        )
    )
    assistant = create_assistant(app_context(ctx), request)
    Output(json).record(assistant)


@app.command(
    "get",
    epilog=examples(
        "aigw assistants get asst_abc123", "aigw assistants get asst_abc123 --no-cache"
    ),
)
def get(
    ctx: typer.Context,
    assistant_id: str,
    json: bool = JsonOption,
    no_cache: bool = NoCacheOption,
    max_age: str | None = MaxAgeOption,
    verbose: bool = VerboseOption,
) -> None:
    """Show one assistant."""
    from aigw.services.assistants import get_assistant

    app_ctx = app_context(ctx)
    set_cache_options(app_ctx, no_cache=no_cache, max_age=max_age, verbose=verbose)
    Output(json).record(get_assistant(app_ctx, assistant_id))


@app.command(
    "update",
    epilog=examples("aigw assistants update asst_abc123 --temperature 0.3 --metadata team=ops"),
)
def update(
    ctx: typer.Context,
    assistant_id: str,
    model: str | None = typer.Option(None, "--model", help="Model ID."),
    name: str | None = NameOption,
    description: str | None = DescriptionOption,
    instructions: str | None = InstructionsOption,
    instructions_file: Path | None = InstructionsFileOption,
    tool: list[str] | None = ToolOption,
    metadata: list[str] | None = MetadataOption,
    temperature: float | None = TemperatureOption,
    top_p: float | None = TopPOption,
    json: bool = JsonOption,
) -> None:
    """Change an assistant; only the options given are sent."""
    from aigw.services.assistants import update_assistant
    from aigw.services.requests import AssistantFields

    request = AssistantFields(
        **fields(
            model=model,
            name=name,
            description=description,
            instructions=instructions,
            instructions_file=instructions_file,
            tools=tool,
            metadata=metadata,
            temperature=temperature,
            top_p=top_p,
        )
    )
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
