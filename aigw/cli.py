"""The root Typer app: global options, the error boundary, and the wiring of the sub-apps."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from aigw import __version__
from aigw.boundary import ErrorBoundaryGroup
from aigw.commands import (
    assistants,
    breaker,
    completions,
    config,
    demo,
    doctor,
    logs,
    messages,
    metrics,
    migrate,
    runs,
    sandbox,
    threads,
)
from aigw.commands._options import ForceOption, NoWaitOption, set_invocation_options
from aigw.context import AppContext
from aigw.errors import Terminated

app = typer.Typer(
    name="aigw",
    cls=ErrorBoundaryGroup,
    help="The operator's console for OpenAI Assistants traffic through an AI gateway.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,  # static scripts instead: `aigw completions`
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(config.app, name="config")
app.add_typer(assistants.app, name="assistants")
app.add_typer(threads.app, name="threads")
app.add_typer(messages.app, name="messages")
app.add_typer(runs.app, name="runs")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(completions.app, name="completions")
app.add_typer(migrate.app, name="migrate")
app.add_typer(breaker.app, name="breaker")
app.add_typer(logs.app, name="logs")
app.command("metrics")(metrics.metrics)
app.add_typer(doctor.app, name="doctor")
app.add_typer(demo.app, name="demo")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aigw {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    direct: bool | None = typer.Option(
        None,
        "--direct/--gateway",
        help="Rollback switch: call OpenAI directly (overrides USE_AI_GATEWAY).",
        show_default=False,
    ),
    base_url: str | None = typer.Option(
        None, "--gateway-url", help="Gateway base URL (overrides AI_GATEWAY_URL)."
    ),
    home: Path | None = typer.Option(
        None, "--home", help="Local state folder (overrides AIGW_HOME)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    force: bool = ForceOption,
    no_wait: bool = NoWaitOption,
) -> None:
    if not isinstance(ctx.obj, AppContext):  # tests may inject their own
        ctx.obj = AppContext(
            flags={
                "use_ai_gateway": None if direct is None else not direct,
                "ai_gateway_url": base_url,
                "home": home,
            }
        )
    set_invocation_options(ctx.obj, force=force, no_wait=no_wait)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main() -> None:
    # SIGTERM unwinds like Ctrl-C, so the command closes: its log rows are committed first.
    signal.signal(signal.SIGTERM, _terminate)
    app()
