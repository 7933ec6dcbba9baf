"""`aigw dashboard`: serve the metrics as a web page on this machine."""

from __future__ import annotations

import typer

from aigw.commands._options import examples
from aigw.context import app_context

EXAMPLES = examples("aigw dashboard", "aigw dashboard --port 0 --open", "aigw dashboard --local")


def dashboard(
    ctx: typer.Context,
    port: int = typer.Option(8788, "--port", min=0, max=65535, help="Port; 0 picks a free one."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (the page has no login: keep it local)."
    ),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
    local: bool = typer.Option(
        False, "--local", help="Read the local store even when a remote one is configured."
    ),
) -> None:
    """Serve the metrics page until Ctrl-C.

    Tiles, charts over time, per-endpoint and per-agent tables, the latest errors; the same
    numbers as `aigw metrics --json` for the same window. The first stdout line is
    `dashboard on http://HOST:PORT/`.
    """
    from aigw.dashboard import dashboard_app, serve
    from aigw.render import Output

    app_ctx = app_context(ctx)
    app_ctx.flush_logs_on_close = False  # it reads; its readers have contexts of their own
    out = Output()
    if host not in ("127.0.0.1", "localhost", "::1"):
        out.warn(f"--host {host}: anyone who can reach it sees the metrics (there is no login)")

    def ready(url: str) -> None:
        typer.echo(f"dashboard on {url}")
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    serve(
        dashboard_app(app_ctx.settings, local=local, clock=app_ctx.clock.now),
        host,
        port,
        on_ready=ready,
    )
