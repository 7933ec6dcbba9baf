"""`aigw gateway serve`: the gateway itself, in front of the application's own traffic."""

from __future__ import annotations

import typer

from aigw.commands._options import HostOption, examples
from aigw.context import app_context

app = typer.Typer(
    help="Run aigw as the gateway in front of your app.",
    no_args_is_help=True,
)


@app.command(
    "serve",
    epilog=examples(
        "aigw gateway serve --port 8787 --upstream https://api.openai.com/v1",
        "aigw gateway serve --host 0.0.0.0 --workers 2",
    ),
)
def serve(
    ctx: typer.Context,
    host: str = HostOption,
    port: int = typer.Option(8787, "--port", min=0, max=65535, help="Port; 0 picks a free one."),
    upstream: str | None = typer.Option(
        None, "--upstream", help="Upstream base URL ending in /v1 (default: OPENAI_BASE_URL)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
    assistants: str = typer.Option(
        "proxy",
        "--assistants",
        help="proxy: pass Assistants calls upstream; local: answer them here, making each run "
        "through --model-url (docs/bridge.md).",
    ),
    model_url: str | None = typer.Option(
        None,
        "--model-url",
        help="With --assistants local: a Chat Completions base URL ending in /v1 (its key: "
        "OPENAI_API_KEY).",
    ),
) -> None:
    """Serve /v1/* until stopped (SIGTERM/SIGINT drain it). The first stdout line is
    `listening on http://HOST:PORT/v1`.

    Example: aigw gateway serve --port 8787 --upstream https://api.openai.com/v1

    Example: aigw gateway serve --assistants local --model-url http://127.0.0.1:11434/v1
    """
    from aigw.server.start import serve_gateway

    code = serve_gateway(
        app_context(ctx).settings,
        host=host,
        port=port,
        upstream=upstream,
        workers=workers,
        assistants=assistants,
        model_url=model_url,
        announce=lambda url: typer.echo(f"listening on {url}"),
    )
    raise typer.Exit(code)
