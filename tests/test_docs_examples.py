"""Every command example in README.md and docs/*.md runs as printed.

The convention (also at the top of docs/README.md):

- A block fenced as ```console is a session this test runs. A line starting with `$ ` is a
  command (a line ending in `\\` continues it); every other line is output, shown for the
  reader and not compared (IDs and times differ on every run).
- Each block runs as one bash script with `set -eo pipefail`: every command must exit 0 (show
  an expected failure as `… || echo "exit $?"`). It runs in a fresh working folder with a fresh
  AIGW_HOME and with the environment `eval "$(aigw sandbox serve --env --detach)"` gives: a
  fresh sandbox behind AI_GATEWAY_URL. Nothing is carried from one block to the next.
- A command ending in `&` runs in the background (a server); it is ended with the block.
- ```console db blocks also get SUPABASE_DB_URL: a fresh, empty, throw-away PostgreSQL database.
- Every other fence (```text, ```bash, ```python, ```sql, ```json) is only shown: commands that
  need a real gateway or Supabase, or that run until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aigw.sandbox import Sandbox, SandboxOptions
from aigw.services.sandbox import env_line, stop_all
from tests.helpers.docs_examples import Example, all_examples
from tests.helpers.processes import Finished

BLOCK_DEADLINE_S = 150
EXAMPLES = all_examples()


def test_every_console_block_has_a_command() -> None:
    # A console block with no `$ ` line would be skipped silently: it must be ```text instead.
    empty = [example.name for example in EXAMPLES if not example.commands]
    assert not empty, f"console blocks with no `$ ` command: {empty}"


def test_the_examples_are_found() -> None:
    assert len(EXAMPLES) >= 10 and any(e.page == "README.md" for e in EXAMPLES)


def shell_environment(sandbox_url: str, home: Path) -> dict[str, str]:
    env = dict(os.environ)  # the autouse fixture already removed the developer's variables
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["AIGW_HOME"] = str(home)
    env["HOME"] = str(home.parent / "home")  # `aigw completions install` writes under HOME
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env.pop(name, None)
    for assignment in env_line(sandbox_url).removeprefix("export ").split():
        name, _, value = assignment.partition("=")
        env[name] = value
    return env


@pytest.mark.timeout(BLOCK_DEADLINE_S + 30)  # the block has its own deadline, below
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_runs_as_printed(
    example: Example, isolated_env: Path, request: pytest.FixtureRequest
) -> None:
    sandbox = Sandbox(SandboxOptions(run_duration_ms=50, poll_after_ms=10)).start()
    try:
        env = shell_environment(sandbox.url, isolated_env)
        if example.needs_db:
            env["SUPABASE_DB_URL"] = request.getfixturevalue("fresh_db")
        done = run_block(example, env, isolated_env.parent)
    finally:
        stop_all(isolated_env)
        sandbox.stop()
    assert done.exit_code == 0, (
        f"{example.name} failed (exit {done.exit_code}):\n{done.stderr}\n--- stdout\n{done.stdout}"
    )
    assert "Traceback" not in done.stderr


def run_block(example: Example, env: dict[str, str], scratch: Path) -> Finished:
    """The block as one bash script in a session of its own: what it left running in the
    background (`… &`) is ended with the session. Output goes to files, not pipes, so a
    background server still holding them cannot keep the block from finishing."""
    script = "set -eo pipefail\nPS4='$ '\nset -x\n" + "\n".join(example.commands) + "\n"
    out, err = scratch / "block.stdout", scratch / "block.stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        shell = subprocess.Popen(
            ["bash", "-c", script],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            exit_code = shell.wait(timeout=BLOCK_DEADLINE_S)
        except subprocess.TimeoutExpired:
            exit_code = -1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGTERM)
            shell.wait(timeout=10)
    stderr_text = err.read_text(errors="replace")
    if exit_code == -1:
        stderr_text += f"\n(the block did not finish within {BLOCK_DEADLINE_S} s)"
    return Finished(exit_code, out.read_text(errors="replace"), stderr_text)
