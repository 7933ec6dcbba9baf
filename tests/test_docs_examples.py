"""Every command example in README.md and docs/*.md runs as printed.

The convention (also at the top of docs/README.md):

- A block fenced as ```console is a session this test runs. A line starting with `$ ` is a
  command (a line ending in `\\` continues it); every other line is output, shown for the
  reader and not compared (IDs and times differ on every run).
- Each block runs as one bash script with `set -eo pipefail`: every command must exit 0 (show
  an expected failure as `… || echo "exit $?"`). It runs in a fresh working folder with a fresh
  AIGW_HOME and with the environment `eval "$(aigw sandbox serve --env --detach)"` gives: a
  fresh sandbox behind AI_GATEWAY_URL. Nothing is carried from one block to the next.
- ```console db blocks also get SUPABASE_DB_URL: a fresh, empty, throw-away PostgreSQL database.
- Every other fence (```text, ```bash, ```python, ```sql, ```json) is only shown: commands that
  need a real gateway or Supabase, or that run until Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigw.sandbox import Sandbox, SandboxOptions
from aigw.services.sandbox import env_line, stop_all
from tests.helpers.docs_examples import Example, all_examples

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
        script = "set -eo pipefail\nPS4='$ '\nset -x\n" + "\n".join(example.commands) + "\n"
        try:
            done = subprocess.run(
                ["bash", "-c", script],
                env=env,
                cwd=Path.cwd(),
                capture_output=True,
                text=True,
                timeout=BLOCK_DEADLINE_S,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{example.name} did not finish within {BLOCK_DEADLINE_S} s: {exc}")
    finally:
        stop_all(isolated_env)
        sandbox.stop()
    assert done.returncode == 0, (
        f"{example.name} failed (exit {done.returncode}):\n{done.stderr}\n--- stdout\n{done.stdout}"
    )
    assert "Traceback" not in done.stderr
