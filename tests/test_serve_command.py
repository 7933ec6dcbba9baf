"""`aigw sandbox serve` as a user runs it: a subprocess, its first line, real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers.processes import aigw_process


@contextmanager
def serving(*args: str) -> Iterator[tuple[str, str]]:
    """`aigw sandbox serve ARGS` in the foreground: its URL and the export line after it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigw", "sandbox", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:") and first.endswith("/v1")
        yield first.removeprefix("listening on "), proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def served() -> Iterator[str]:
    with serving("--port", "0", "--gateway-key", "gk-1") as (url, _):
        yield url


def call(url: str, headers: dict[str, str], method: str = "GET", body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_answers_401_without_the_gateway_key(served: str) -> None:
    status, body = call(f"{served}/assistants", {"authorization": "Bearer sk-x"})
    assert status == 401
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_serve_answers_with_the_gateway_key(served: str) -> None:
    headers = {"authorization": "Bearer sk-x", "x-vercel-ai-gateway-key": "gk-1"}
    status, made = call(f"{served}/assistants", headers, "POST", {"model": "gpt-4o"})
    assert status == 200 and made["object"] == "assistant"
    status, listing = call(f"{served}/assistants?limit=1", headers)
    assert status == 200
    assert listing == {
        "object": "list",
        "data": [made],
        "first_id": made["id"],
        "last_id": made["id"],
        "has_more": False,
    }


def test_serve_answers_400_for_a_missing_model_and_404_for_unknown_ids(served: str) -> None:
    headers = {"authorization": "Bearer sk-x", "x-vercel-ai-gateway-key": "gk-1"}
    status, body = call(f"{served}/assistants", headers, "POST", {"name": "x"})
    assert status == 400 and body["error"]["param"] == "model"
    status, body = call(f"{served}/assistants/asst_missing", headers)
    assert (
        status == 404 and body["error"]["message"] == "No assistant found with id 'asst_missing'."
    )


def test_serve_prints_the_export_line_after_its_url() -> None:
    with serving("--gateway-key", "gk-1") as (url, export):
        assert export == (
            f"export AI_GATEWAY_URL={url} GATEWAY_API_KEY=gk-1 OPENAI_API_KEY=sk-sandbox "
            "USE_AI_GATEWAY=true"
        )


def exported(line: str) -> dict[str, str]:
    assert line.startswith("export ")
    return dict(pair.split("=", 1) for pair in line.removeprefix("export ").split())


def test_a_detached_sandbox_serves_the_exported_environment_until_stopped(
    isolated_env: object,
) -> None:
    started = aigw_process("sandbox", "serve", "--env", "--detach")
    assert started.exit_code == 0, started.stderr
    lines = started.stdout.splitlines()
    assert len(lines) == 1  # only the export line: `eval "$(…)"` takes it as it is
    env = exported(lines[0])
    headers = {
        "authorization": f"Bearer {env['OPENAI_API_KEY']}",
        "x-vercel-ai-gateway-key": env["GATEWAY_API_KEY"],
    }
    status, _ = call(f"{env['AI_GATEWAY_URL']}/assistants", headers)
    assert status == 200
    stopped = aigw_process("sandbox", "stop")
    assert stopped.exit_code == 0 and env["AI_GATEWAY_URL"] in stopped.stderr
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{env['AI_GATEWAY_URL']}/assistants", timeout=5)


def test_sandbox_stop_with_nothing_running_says_so(isolated_env: object) -> None:
    stopped = aigw_process("sandbox", "stop")
    assert stopped.exit_code == 0 and "no detached sandbox is running" in stopped.stderr


def test_a_detached_sandbox_that_cannot_start_says_why(isolated_env: object) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        failed = aigw_process("sandbox", "serve", "--detach", "--port", port)
    assert failed.exit_code != 0
    assert failed.stderr.startswith("error: the sandbox did not start:")
    assert "Traceback" not in failed.stderr
