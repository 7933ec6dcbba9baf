"""`aigw sandbox serve` as a user runs it: a subprocess, its first line, real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest


@pytest.fixture
def served() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigw", "sandbox", "serve", "--port", "0", "--gateway-key", "gk-1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:") and first.endswith("/v1")
        yield first.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
