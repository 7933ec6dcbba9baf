"""Real `python -m aigw` processes, and the sandbox's admin endpoint spoken over plain HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aigw.sandbox import Sandbox


@dataclass
class Finished:
    exit_code: int
    stdout: str
    stderr: str


def aigw_process(*args: str, env: dict[str, str] | None = None) -> Finished:
    """`python -m aigw ARGS` in its own process, with this test's (isolated) environment."""
    merged = {**os.environ, **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "aigw", *args],
        env=merged,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Finished(done.returncode, done.stdout, done.stderr)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signal_a_waiting_run(
    thread_id: str, assistant: str, signum: int, run_exists: Callable[[], bool]
) -> Finished:
    """`aigw runs create … --wait` on a run that will not finish, sent `signum` once the run
    exists (the command is then waiting on it: it created it inside the wait)."""
    command = ["runs", "create", thread_id, "--assistant", assistant, "--wait"]
    waiting = subprocess.Popen(
        [sys.executable, "-m", "aigw", *command, "-m", "sandbox_run_ms=60000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As at a terminal: a shell that runs the suite in the background ignores SIGINT, and a
        # child inheriting that would never see the Ctrl-C this sends.
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 30
        while not run_exists():
            assert waiting.poll() is None, waiting.communicate()
            assert time.monotonic() < deadline, "the run was never created"
            time.sleep(0.05)
        waiting.send_signal(signum)
        stdout, stderr = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    return Finished(waiting.returncode, stdout, stderr)


def admin(server: Sandbox, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the sandbox's admin API (`/v1/__sandbox/…`), as a user rehearsing an outage would."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
