"""How threads, messages, runs and run steps look to people: columns, records, the live wait
status, and the end of a wait (the reply, the pending tool calls, or the run's error)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from aigw.common.messages import message_text
from aigw.durations import format_duration
from aigw.render.output import Column, Output, fmt_time, printable


def literal(value: str | None) -> Text | None:
    """Text people or models wrote, shown as-is: `[/x]` or `:smile:` are not Rich markup."""
    return Text(value) if value else None


def fmt_metadata(metadata: dict[str, str] | None) -> Text | None:
    """Metadata as `k=v, …`, printed literally."""
    return literal(", ".join(f"{k}={v}" for k, v in (metadata or {}).items()))


def fmt_usage(usage: Any) -> str:
    """A run's token usage as `prompt + completion = total`."""
    if usage is None:
        return ""
    return (
        f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
        f" = {usage.total_tokens} tokens"
    )


def fmt_error(error: Any) -> str:
    """A run's last error as `code: message`; empty when none."""
    return f"{error.code}: {error.message}" if error is not None else ""  # plain: for messages


def pending_calls(run: Any) -> list[Any]:
    """The tool calls a run waits on (requires_action), else none."""
    action = getattr(run, "required_action", None)
    return list(action.submit_tool_outputs.tool_calls) if action is not None else []


# -- threads ---------------------------------------------------------------------------------


def thread_fields(thread: Any) -> list[tuple[str, Any]]:
    """The fields a thread shows as a record."""
    return [
        ("id", thread.id),
        ("created", fmt_time(thread.created_at)),
        ("metadata", fmt_metadata(thread.metadata)),
    ]


# -- messages --------------------------------------------------------------------------------

MESSAGE_COLUMNS = [
    Column("id", lambda m: m.id, style="cyan", key=True),
    Column("role", lambda m: m.role),
    Column("text", lambda m: literal(message_text(m))),
    Column("run", lambda m: m.run_id, style="dim"),
    Column("created", lambda m: fmt_time(m.created_at), style="dim", no_wrap=True),
]


def message_fields(message: Any) -> list[tuple[str, Any]]:
    """The fields a message shows as a record."""
    return [
        ("id", message.id),
        ("thread", message.thread_id),
        ("role", message.role),
        ("status", message.status),
        ("created", fmt_time(message.created_at)),
        ("assistant", message.assistant_id),
        ("run", message.run_id),
        ("metadata", fmt_metadata(message.metadata)),
        ("text", literal(message_text(message))),
    ]


# -- runs and steps --------------------------------------------------------------------------

RUN_COLUMNS = [
    Column("id", lambda r: r.id, style="cyan", key=True),
    Column("status", lambda r: r.status),
    Column("assistant", lambda r: r.assistant_id),
    Column("model", lambda r: r.model),
    Column("tokens", lambda r: r.usage.total_tokens if r.usage else None, justify="right"),
    Column("created", lambda r: fmt_time(r.created_at), style="dim", no_wrap=True),
]


def run_fields(run: Any) -> list[tuple[str, Any]]:
    """The fields a run shows as a record, its pending calls included."""
    calls = ", ".join(
        f"{c.id} {c.function.name}({c.function.arguments})" for c in pending_calls(run)
    )
    return [
        ("id", run.id),
        ("thread", run.thread_id),
        ("assistant", run.assistant_id),
        ("status", run.status),
        ("model", run.model),
        ("created", fmt_time(run.created_at)),
        ("started", fmt_time(run.started_at)),
        ("completed", fmt_time(run.completed_at)),
        ("failed", fmt_time(run.failed_at)),
        ("cancelled", fmt_time(run.cancelled_at)),
        ("expires", fmt_time(run.expires_at)),
        ("last error", literal(fmt_error(run.last_error))),
        ("tool calls", literal(calls)),
        ("usage", fmt_usage(run.usage)),
        ("instructions", literal(run.instructions)),
        ("metadata", fmt_metadata(run.metadata)),
    ]


def step_details(step: Any) -> str:
    """What a run step did: the message it wrote or the tools it called."""
    details = step.step_details
    if details.type == "message_creation":
        return f"message {details.message_creation.message_id}"
    labels = []
    for call in details.tool_calls:
        function = getattr(call, "function", None)
        labels.append(f"{call.id} {function.name}" if function is not None else call.type)
    return ", ".join(labels)


STEP_COLUMNS = [
    Column("id", lambda s: s.id, style="cyan", key=True),
    Column("type", lambda s: s.type),
    Column("status", lambda s: s.status),
    Column("details", lambda s: literal(step_details(s))),
    Column("tokens", lambda s: s.usage.total_tokens if s.usage else None, justify="right"),
    Column("created", lambda s: fmt_time(s.created_at), style="dim", no_wrap=True),
]


# -- waiting ---------------------------------------------------------------------------------


@contextmanager
def wait_status(out: Output, label: str) -> Iterator[Callable[[Any | None, float], None]]:
    """A live spinner with the run's status and elapsed time on a terminal; silent otherwise."""
    if not out.interactive:
        yield lambda run, elapsed: None
        return
    with out.stderr.status(f"{escape(label)} starting") as status:

        def update(run: Any | None, elapsed: float) -> None:
            state = run.status if run is not None else "starting"
            name = f" {run.id}" if run is not None else ""
            status.update(
                f"{escape(label)}{name} [bold]{state}[/bold] [dim]{format_duration(elapsed)}[/dim]"
            )

        yield update


def submit_command(thread_id: str, run: Any) -> str:
    """The exact command that answers the run's pending tool calls."""
    parts = ["aigw", "runs", "submit-tool-outputs", thread_id, run.id]
    for call in pending_calls(run):
        parts += ["--output", f"{call.id}=VALUE"]
    return shlex.join(parts)


def show_reply(out: Output, messages: list[Any]) -> None:
    """The reply: a panel per message on a terminal, the plain text when piped."""
    for message in messages:
        text = printable(message_text(message))
        title = printable(f"{message.role} · {message.id}").replace("\n", " ")
        if out.stdout.is_terminal:
            out.print(Panel(Text(text), title=title, title_align="left"))
        else:
            out.stdout.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


def show_tool_calls(out: Output, thread_id: str, run: Any) -> None:
    """The table of a run's pending tool calls and the command that answers them."""
    calls = pending_calls(run)
    columns = [
        Column("call id", lambda c: c.id, style="cyan", key=True),
        Column("function", lambda c: literal(c.function.name)),
        Column("arguments", lambda c: literal(c.function.arguments)),
    ]
    out.rows(calls, columns, title=f"run {run.id} requires action")
    out.note(f"answer with: {submit_command(thread_id, run)}")
