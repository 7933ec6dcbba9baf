"""`aigw sandbox serve|stop`: the Assistants-compatible server for rehearsals and tests."""

from __future__ import annotations

from pathlib import Path

import typer

from aigw.commands._options import HostOption, examples

app = typer.Typer(help="Run the Assistants-API-compatible sandbox server.", no_args_is_help=True)


@app.command(
    "serve",
    epilog=examples(
        'eval "$(aigw sandbox serve --env --detach)"',
        "aigw sandbox serve --port 8787 --run-ms 2000",
        "aigw sandbox serve --fault '* /v1/* 503'",
    ),
)
def serve(
    ctx: typer.Context,
    host: str = HostOption,
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port; 0 picks a free one."),
    gateway_key: list[str] | None = typer.Option(
        None, "--gateway-key", help="Require this gateway key (repeatable); none → no check."
    ),
    gateway_key_header: str = typer.Option(
        "x-vercel-ai-gateway-key", "--gateway-key-header", help="Header carrying the key."
    ),
    run_ms: int = typer.Option(300, "--run-ms", min=0, help="How long a run takes (ms)."),
    requires_action_expiry: str = typer.Option(
        "10m",
        "--requires-action-expiry",
        help="How long a run may wait in requires_action before it expires (10m, 90s, 0).",
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
    env: bool = typer.Option(
        False, "--env", help="Print only the `export` line that points a shell at the sandbox."
    ),
    detach: bool = typer.Option(
        False, "--detach", "-d", help="Run in the background; `aigw sandbox stop` ends it."
    ),
    state_dir: Path | None = typer.Option(None, "--state-dir", hidden=True),
) -> None:
    """Serve until stopped (Ctrl-C, or `aigw sandbox stop` with --detach).

    The first stdout line is `listening on http://HOST:PORT/v1`; the next is the `export`
    line that points a shell at it, with keys the sandbox accepts.
    """
    from aigw.durations import parse_duration
    from aigw.sandbox import Sandbox, SandboxOptions
    from aigw.services import sandbox as service

    expiry = parse_duration(requires_action_expiry, "--requires-action-expiry", zero=True)
    options = SandboxOptions(
        gateway_keys=list(gateway_key or []),
        gateway_key_header=gateway_key_header,
        run_duration_ms=run_ms,
        requires_action_expiry_s=expiry,
        poll_after_ms=poll_after_ms,
    )
    from aigw.errors import UsageError
    from aigw.sandbox.faults import parse_fault

    try:
        faults = [parse_fault(spec) for spec in fault or []]
    except ValueError as exc:
        raise UsageError(f"--fault: {exc}") from None
    gateway_key_for_env = gateway_key[0] if gateway_key else None
    if detach:
        from aigw.context import app_context
        from aigw.render import Output

        serve_args = [
            *("--host", host, "--port", str(port), "--gateway-key-header", gateway_key_header),
            *("--run-ms", str(run_ms), "--poll-after-ms", str(poll_after_ms)),
            *("--requires-action-expiry", requires_action_expiry),
            *(arg for key in gateway_key or [] for arg in ("--gateway-key", key)),
            *(arg for spec in fault or [] for arg in ("--fault", spec)),
        ]
        started = service.start_detached(serve_args, app_context(ctx).settings.home)
        if not env:
            typer.echo(f"listening on {started.url}")
        typer.echo(service.env_line(started.url, gateway_key_for_env))
        Output().note(f"sandbox running in the background (pid {started.pid}): aigw sandbox stop")
        return
    sandbox = Sandbox(options)
    for each in faults:
        sandbox.faults.add(each)
    try:
        sandbox.bind(host, port)
    except (OSError, OverflowError, UnicodeError) as exc:
        sandbox.stop()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None
    recorded = None
    try:
        if state_dir is not None:  # the detached child: say where it is, then leave no output
            recorded = service.record(state_dir, sandbox.url)
            _silence_stdio()
        else:
            if not env:
                typer.echo(f"listening on {sandbox.url}")
            typer.echo(service.env_line(sandbox.url, gateway_key_for_env))
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        if recorded is not None:
            recorded.unlink(missing_ok=True)


def _silence_stdio() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


@app.command("stop", epilog=examples("aigw sandbox stop"))
def stop(ctx: typer.Context) -> None:
    """Stop the detached sandboxes. Those `serve --detach` started with this AIGW_HOME."""
    from aigw.context import app_context
    from aigw.render import Output
    from aigw.services import sandbox as service

    stopped = service.stop_all(app_context(ctx).settings.home)
    out = Output()
    for each in stopped:
        out.success(f"stopped the sandbox at {each.url} (pid {each.pid})")
    if not stopped:
        out.note("no detached sandbox is running")
