"""Real `python -m aigw` processes, and the sandbox's admin endpoint spoken over plain HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
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


def admin(server: Sandbox, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the sandbox's admin API (`/v1/__sandbox/…`), as a user rehearsing an outage would."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
