"""`aigw sandbox serve`: the Assistants-compatible server for rehearsals and tests."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run the Assistants-API-compatible sandbox server.", no_args_is_help=True)


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(0, "--port", help="Port; 0 picks a free one."),
    gateway_key: list[str] | None = typer.Option(
        None, "--gateway-key", help="Require this gateway key (repeatable); none → no check."
    ),
    gateway_key_header: str = typer.Option(
        "x-vercel-ai-gateway-key", "--gateway-key-header", help="Header carrying the key."
    ),
    run_ms: int = typer.Option(300, "--run-ms", min=0, help="How long a run takes (ms)."),
) -> None:
    """Serve until stopped. The first stdout line is `listening on http://HOST:PORT/v1`."""
    from aigw.sandbox import Sandbox, SandboxOptions

    options = SandboxOptions(
        gateway_keys=list(gateway_key or []),
        gateway_key_header=gateway_key_header,
        run_duration_ms=run_ms,
    )
    sandbox = Sandbox(options).bind(host, port)
    typer.echo(f"listening on {sandbox.url}")
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
