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
    requires_action_expiry: float = typer.Option(
        600.0,
        "--requires-action-expiry",
        min=0,
        help="Seconds a run may wait in requires_action before it expires.",
    ),
    poll_after_ms: int = typer.Option(
        50, "--poll-after-ms", min=0, help="`openai-poll-after-ms` sent with run objects."
    ),
    fault: list[str] | None = typer.Option(
        None,
        "--fault",
        metavar="SPEC",
        help="Inject a fault, e.g. 'GET /v1/assistants 429 retry-after=1 x2' (repeatable; "
        "syntax: METHOD PATH [STATUS|drop] [retry-after=S] [retry-after-ms=MS] [delay=MS] "
        "[xN] [after]).",
    ),
) -> None:
    """Serve until stopped. The first stdout line is `listening on http://HOST:PORT/v1`."""
    from aigw.sandbox import Sandbox, SandboxOptions

    options = SandboxOptions(
        gateway_keys=list(gateway_key or []),
        gateway_key_header=gateway_key_header,
        run_duration_ms=run_ms,
        requires_action_expiry_s=requires_action_expiry,
        poll_after_ms=poll_after_ms,
    )
    from aigw.errors import UsageError
    from aigw.sandbox.faults import parse_fault

    try:
        faults = [parse_fault(spec) for spec in fault or []]
    except ValueError as exc:
        raise UsageError(f"--fault: {exc}") from None
    sandbox = Sandbox(options)
    for each in faults:
        sandbox.faults.add(each)
    sandbox.bind(host, port)
    typer.echo(f"listening on {sandbox.url}")
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
