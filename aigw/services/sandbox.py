"""The sandbox as a background process: start it detached, find it, stop it; the shell lines
that point aigw (or any OpenAI SDK) at it.

A detached sandbox records itself in `$AIGW_HOME/sandboxes/<port>.json` ({"pid", "url"}) and
removes the file when it stops, so `aigw sandbox stop` finds exactly the ones it started.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from aigw.errors import AigwError, ExitCode

# Keys the sandbox accepts: any Bearer key, and any gateway key unless --gateway-key is given.
SANDBOX_OPENAI_KEY = "sk-sandbox"
SANDBOX_GATEWAY_KEY = "gk-sandbox"
READY_DEADLINE_S = 15.0
STOP_DEADLINE_S = 10.0


class Detached(NamedTuple):
    url: str
    pid: int


def env_line(url: str, gateway_key: str | None = None) -> str:
    """One `export` line that points a shell at the sandbox (values quoted for the shell)."""
    values = {
        "AI_GATEWAY_URL": url,
        "GATEWAY_API_KEY": gateway_key or SANDBOX_GATEWAY_KEY,
        "OPENAI_API_KEY": SANDBOX_OPENAI_KEY,
        "USE_AI_GATEWAY": "true",
    }
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items())


def state_dir(home: Path) -> Path:
    return home / "sandboxes"


def record(folder: Path, url: str) -> Path:
    """Written by the detached sandbox itself once it listens; removed when it stops."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{os.getpid()}.json"
    partial = final.with_suffix(".partial")
    partial.write_text(json.dumps({"pid": os.getpid(), "url": url}), encoding="utf-8")
    partial.replace(final)  # never a half-written file for `start` or `stop` to read
    return final


def start_detached(serve_args: list[str], home: Path) -> Detached:
    """Run `aigw sandbox serve SERVE_ARGS` in its own session; return once it listens."""
    folder = state_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-m", "aigw", "sandbox", "serve", *serve_args, "--state-dir", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # outlives this command and the shell's Ctrl-C
    )
    ready = folder / f"{child.pid}.json"
    deadline = time.monotonic() + READY_DEADLINE_S
    while not ready.exists():
        if child.poll() is not None:
            error = (child.stderr.read() if child.stderr else b"").decode(errors="replace")
            last = error.strip().splitlines()[-1] if error.strip() else "it exited"
            raise AigwError(
                f"the sandbox did not start: {last.removeprefix('error: ')}",
                code=ExitCode(child.returncode) if child.returncode in _CODES else ExitCode.USAGE,
            )
        if time.monotonic() > deadline:
            child.kill()
            raise AigwError(f"the sandbox did not start within {READY_DEADLINE_S:.0f} s")
        time.sleep(0.02)
    if child.stderr:
        child.stderr.close()
    found = json.loads(ready.read_text(encoding="utf-8"))
    return Detached(url=found["url"], pid=child.pid)


_CODES = {int(code) for code in ExitCode}


def running(home: Path) -> list[tuple[Path, Detached]]:
    """The detached sandboxes this AIGW_HOME started that still run (stale files removed)."""
    found = []
    for path in sorted(state_dir(home).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            sandbox = Detached(url=str(data["url"]), pid=int(data["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _is_our_sandbox(sandbox.pid):
            found.append((path, sandbox))
        else:
            path.unlink(missing_ok=True)
    return found


def _is_our_sandbox(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: a reused pid, not ours
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a reused pid belongs to another program
        try:
            return b"sandbox" in cmdline.read_bytes()
        except OSError:
            return False
    return True


def stop_all(home: Path, sleep: Callable[[float], None] = time.sleep) -> list[Detached]:
    """SIGTERM every detached sandbox of this AIGW_HOME and wait until each has gone."""
    stopped = []
    for path, sandbox in running(home):
        try:
            os.kill(sandbox.pid, signal.SIGTERM)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            continue
        deadline = time.monotonic() + STOP_DEADLINE_S
        while _is_our_sandbox(sandbox.pid) and path.exists():
            if time.monotonic() > deadline:
                raise AigwError(
                    f"the sandbox at {sandbox.url} (pid {sandbox.pid}) did not stop within "
                    f"{STOP_DEADLINE_S:.0f} s",
                    hint=f"kill {sandbox.pid}",
                )
            sleep(0.02)
        path.unlink(missing_ok=True)
        stopped.append(sandbox)
    return stopped
