"""`aigw demo`: the whole system in a minute, offline — sandbox, a run, its reply, metrics."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from aigw.commands._options import examples
from aigw.context import AppContext
from aigw.render import Output

app = typer.Typer(
    epilog=examples("aigw demo", "aigw demo --keep ./demo-state"),
    help="See aigw work end to end, offline, on the embedded defaults.",
)

PROMPT = "Hello! What does aigw do for an operator?"


def _say(out: Output, *argv: str) -> None:
    """Echo the command a person would type for this step."""
    out.stdout.print(f"\n[bold]$ {shlex.join(['aigw', *argv])}[/bold]", highlight=False)


@app.callback(invoke_without_command=True)
def demo(
    keep: Path | None = typer.Option(
        None, "--keep", help="Keep the state (logs, cache) in this folder instead of a temp one."
    ),
    run_ms: int = typer.Option(1500, "--run-ms", min=0, help="How long the demo run takes."),
) -> None:
    """Start the sandbox, create an assistant, a thread and a message, run it, show metrics."""
    from datetime import UTC, datetime

    from aigw.commands.runs import show_outcome
    from aigw.render.assistants_views import message_fields, run_fields, thread_fields, wait_status
    from aigw.render.metrics_views import render_metrics
    from aigw.services.assistants import create_assistant
    from aigw.services.demo import demo_stage
    from aigw.services.messages import create_message
    from aigw.services.metrics import MetricsOptions, metrics_report
    from aigw.services.requests import AssistantCreate, MessageCreate, RunCreate, ThreadCreate
    from aigw.services.runs import create_run_and_wait
    from aigw.services.threads import create_thread

    out = Output()
    with demo_stage(keep=keep, run_ms=run_ms) as stage:
        out.note(f"sandbox listening on {stage.url} · state in {stage.home}")
        app_ctx = AppContext(stage.settings)
        try:
            _say(out, "assistants", "create", "--model", "gpt-4o-mini", "--name", "Demo helper")
            assistant = create_assistant(
                app_ctx, AssistantCreate(model="gpt-4o-mini", name="Demo helper")
            )
            out.record(
                assistant,
                [("id", assistant.id), ("name", assistant.name), ("model", assistant.model)],
            )

            _say(out, "threads", "create")
            thread = create_thread(app_ctx, ThreadCreate())
            out.record(thread, thread_fields(thread))

            _say(out, "messages", "create", thread.id, "--content", PROMPT)
            message = create_message(app_ctx, thread.id, MessageCreate(content=PROMPT))
            out.record(message, message_fields(message))

            _say(out, "runs", "create", thread.id, "--assistant", assistant.id, "--wait")
            with wait_status(out, "run") as progress:
                outcome = create_run_and_wait(
                    app_ctx,
                    thread.id,
                    RunCreate(assistant_id=assistant.id),
                    timeout=60.0,
                    on_progress=progress,
                )
            show_outcome(out, thread.id, outcome)
            if outcome.run.status != "completed":
                out.record(outcome.run, run_fields(outcome.run))

            _say(out, "metrics", "--since", "1h")
            report = metrics_report(
                app_ctx, MetricsOptions(since="1h", local=True), datetime.now(UTC)
            )
            render_metrics(out, report, None)
        finally:
            for message in app_ctx.close():
                out.warn(message)
        where = (
            f"kept in {stage.home}: AIGW_HOME={stage.home} aigw logs list"
            if stage.kept
            else "run `aigw demo --keep DIR` to keep them and explore with `aigw logs list`"
        )
        out.stdout.print(
            f"\n[green]✓[/green] every call above was logged locally; {where}",
            highlight=False,
            soft_wrap=True,
        )
