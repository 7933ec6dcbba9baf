"""`aigw runs`: create (and wait), get, list, cancel, submit-tool-outputs, steps."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aigw.commands._options import (
    AllOption,
    JsonOption,
    MetadataOption,
    PageOptions,
    examples,
    parse_pairs,
    read_json,
    with_bundles,
)
from aigw.context import app_context
from aigw.errors import AigwError, ExitCode, UsageError
from aigw.render import Output

if TYPE_CHECKING:
    from aigw.services.requests import ListQuery

app = typer.Typer(help="Runs of a thread (/v1/threads/{id}/runs).", no_args_is_help=True)

WaitOption = typer.Option(
    False,
    "--wait",
    help="Wait until the run completes, fails or requires action; print the reply.",
)
TimeoutOption = typer.Option(
    "10m",
    "--timeout",
    metavar="DURATION",
    help="Give up waiting after this long (90s, 10m, 1h); the run goes on. Exit code 5.",
)


def tool_outputs(pairs: list[str] | None, outputs_file: Path | None, *, check: bool) -> Any:
    """--output CALL_ID=VALUE… or --outputs-file (an array of {tool_call_id, output}, or an
    object mapping call IDs to outputs) → the API's tool_outputs, checked before sending."""
    from aigw.services.requests import ToolOutputs, check_id

    if (pairs is None) == (outputs_file is None):
        raise UsageError("give --output CALL_ID=VALUE (repeatable) or --outputs-file FILE.json")
    items: list[tuple[Any, Any]]
    if pairs is not None:
        items = [(call, value) for call, value in (parse_pairs(pairs, "--output") or {}).items()]
    else:
        assert outputs_file is not None
        data = read_json(outputs_file, "--outputs-file")
        if isinstance(data, dict) and isinstance(data.get("tool_outputs"), list):
            data = data["tool_outputs"]
        if isinstance(data, dict):
            items = list(data.items())
        elif isinstance(data, list) and all(
            isinstance(o, dict) and "tool_call_id" in o and "output" in o for o in data
        ):
            items = [(o["tool_call_id"], o["output"]) for o in data]
        else:
            raise UsageError(
                f"--outputs-file: {outputs_file} must be an array of "
                '{"tool_call_id": …, "output": …} objects or an object {"CALL_ID": output}'
            )
    outputs = []
    for call_id, value in items:
        if not isinstance(call_id, str):
            raise UsageError(f"invalid call_id: {call_id!r} is not an ID")
        check_id(call_id, "call_id", enabled=check)
        # The API takes strings; structured results are sent as their JSON text.
        output = value if isinstance(value, str) else jsonlib.dumps(value)
        outputs.append({"tool_call_id": call_id, "output": output})
    if not outputs:
        raise UsageError("--outputs-file: no tool outputs in the file")
    return ToolOutputs(tool_outputs=outputs)


def show_outcome(out: Output, thread_id: str, outcome: Any, *, goal: str = "completed") -> None:
    """Print where a wait ended; a run that failed (or stopped short of `goal`) exits 1."""
    from aigw.render.assistants_views import (
        fmt_error,
        fmt_usage,
        run_fields,
        show_reply,
        show_tool_calls,
    )
    from aigw.services.wait import FAILED_STATUSES

    run = outcome.run
    if out.json_mode:
        out.json({"run": run, "messages": outcome.messages})
    elif run.status == "completed":
        show_reply(out, outcome.messages)
        out.note(f"run {run.id} completed · {fmt_usage(run.usage)}")
    elif run.status == "requires_action":
        show_tool_calls(out, thread_id, run)
    elif run.status == goal:
        out.success(f"run {run.id} {run.status}")
    else:
        out.record(run, run_fields(run))
    if run.status in FAILED_STATUSES and run.status != goal:
        reason = fmt_error(run.last_error)
        if not reason and run.incomplete_details is not None:
            reason = f"incomplete: {run.incomplete_details.reason}"
        raise AigwError(
            f"run {run.id} {run.status}" + (f": {reason}" if reason else ""),
            code=ExitCode.API_ERROR,
            hint=f"`aigw runs steps {thread_id} {run.id}` shows what it did",
        )


def run_or_wait(
    out: Output,
    thread_id: str,
    act: Callable[[], Any],
    act_and_wait: Callable[..., Any] | None,
    timeout: str,
    *,
    status: str = "run",
    goal: str = "completed",
) -> None:
    """Print the run `act` returns; or, given `act_and_wait` (--wait), follow the run with a
    status line until it stops or the --timeout passes, and print where it ended."""
    from aigw.durations import parse_duration
    from aigw.render.assistants_views import run_fields, wait_status

    seconds = parse_duration(timeout, "--timeout")
    if act_and_wait is None:
        run = act()
        out.record(run, run_fields(run))
        return
    with wait_status(out, status) as progress:
        outcome = act_and_wait(timeout=seconds, on_progress=progress)
    show_outcome(out, thread_id, outcome, goal=goal)


@app.command(
    "create",
    epilog=examples(
        "aigw runs create thread_abc123 --assistant asst_abc123 --wait",
        "aigw runs create thread_abc123 --assistant asst_abc123 --wait --timeout 2m --json",
    ),
)
def create(
    ctx: typer.Context,
    thread_id: str,
    assistant: str = typer.Option(..., "--assistant", metavar="ASST_ID", help="The assistant."),
    instructions: str | None = typer.Option(
        None, "--instructions", help="Replace the assistant's instructions for this run."
    ),
    additional_instructions: str | None = typer.Option(
        None, "--additional-instructions", help="Append to the instructions for this run."
    ),
    model: str | None = typer.Option(None, "--model", help="Override the assistant's model."),
    metadata: list[str] | None = MetadataOption,
    wait: bool = WaitOption,
    timeout: str = TimeoutOption,
    json: bool = JsonOption,
) -> None:
    """Start a run. With --wait, follow it and print the reply (JSON: {run, messages})."""
    from aigw.services.requests import RunCreate
    from aigw.services.runs import create_run, create_run_and_wait

    request = RunCreate(
        assistant_id=assistant,
        instructions=instructions,
        additional_instructions=additional_instructions,
        model=model,
        metadata=parse_pairs(metadata),
    )
    app_ctx = app_context(ctx)
    started = partial(create_run, app_ctx, thread_id, request)
    waited = partial(create_run_and_wait, app_ctx, thread_id, request)
    run_or_wait(Output(json), thread_id, started, waited if wait else None, timeout)


@app.command("get", epilog=examples("aigw runs get thread_abc123 run_abc123"))
def get(ctx: typer.Context, thread_id: str, run_id: str, json: bool = JsonOption) -> None:
    """Show one run. Status, times, last error, pending tool calls, usage."""
    from aigw.render.assistants_views import run_fields
    from aigw.services.runs import get_run

    run = get_run(app_context(ctx), thread_id, run_id)
    Output(json).record(run, run_fields(run))


@app.command("list", epilog=examples("aigw runs list thread_abc123"))
@with_bundles
def list_(
    ctx: typer.Context,
    thread_id: str,
    query: ListQuery = PageOptions,
    all_pages: bool = AllOption,
    json: bool = JsonOption,
) -> None:
    """List a thread's runs, newest first."""
    from aigw.render.assistants_views import RUN_COLUMNS
    from aigw.services.runs import list_runs

    Output(json).fetched_rows(
        lambda: list_runs(app_context(ctx), thread_id, query, all_pages=all_pages),
        RUN_COLUMNS,
        all_pages=all_pages,
    )


@app.command("cancel", epilog=examples("aigw runs cancel thread_abc123 run_abc123 --wait"))
def cancel(
    ctx: typer.Context,
    thread_id: str,
    run_id: str,
    wait: bool = typer.Option(False, "--wait", help="Wait until the run is cancelled."),
    timeout: str = TimeoutOption,
    json: bool = JsonOption,
) -> None:
    """Cancel a queued, in-progress or waiting run."""
    from aigw.services.runs import cancel_run, cancel_run_and_wait

    app_ctx = app_context(ctx)
    cancelled = partial(cancel_run, app_ctx, thread_id, run_id)
    waited = partial(cancel_run_and_wait, app_ctx, thread_id, run_id)
    run_or_wait(
        Output(json),
        thread_id,
        cancelled,
        waited if wait else None,
        timeout,
        status="cancelling run",
        goal="cancelled",
    )


@app.command(
    "submit-tool-outputs",
    epilog=examples(
        "aigw runs submit-tool-outputs thread_abc123 run_abc123 --output call_abc123=21 --wait",
        "aigw runs submit-tool-outputs thread_abc123 run_abc123 --outputs-file outputs.json",
    ),
)
def submit(
    ctx: typer.Context,
    thread_id: str,
    run_id: str,
    output: list[str] | None = typer.Option(
        None, "--output", metavar="CALL_ID=VALUE", help="One tool call's result; repeatable."
    ),
    outputs_file: Path | None = typer.Option(
        None,
        "--outputs-file",
        metavar="FILE.json",
        help='[{"tool_call_id": …, "output": …}] or {"CALL_ID": output} (\'-\' for stdin).',
    ),
    wait: bool = WaitOption,
    timeout: str = TimeoutOption,
    json: bool = JsonOption,
) -> None:
    """Answer a run's pending tool calls. With --wait, follow it again."""
    from aigw.services.runs import submit_tool_outputs, submit_tool_outputs_and_wait

    app_ctx = app_context(ctx)
    request = tool_outputs(output, outputs_file, check=app_ctx.settings.check_id_prefixes)
    submitted = partial(submit_tool_outputs, app_ctx, thread_id, run_id, request)
    waited = partial(submit_tool_outputs_and_wait, app_ctx, thread_id, run_id, request)
    run_or_wait(Output(json), thread_id, submitted, waited if wait else None, timeout)


@app.command("steps", epilog=examples("aigw runs steps thread_abc123 run_abc123"))
@with_bundles
def steps(
    ctx: typer.Context,
    thread_id: str,
    run_id: str,
    query: ListQuery = PageOptions,
    all_pages: bool = AllOption,
    json: bool = JsonOption,
) -> None:
    """List a run's steps. The messages it wrote and the tools it called."""
    from aigw.render.assistants_views import STEP_COLUMNS
    from aigw.services.runs import list_steps

    Output(json).fetched_rows(
        lambda: list_steps(app_context(ctx), thread_id, run_id, query, all_pages=all_pages),
        STEP_COLUMNS,
        all_pages=all_pages,
    )
