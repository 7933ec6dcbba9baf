"""The sandbox's outage rehearsal: fault specs, the admin endpoint, Idempotency-Key replay."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from aigw.sandbox import Sandbox
from aigw.sandbox.faults import Fault, parse_fault
from tests.helpers.processes import admin, aigw_process

HEADERS = {"authorization": "Bearer sk-test", "content-type": "application/json"}


def call(server: Sandbox, method: str, path: str, body: dict | None = None, **headers: str):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={**HEADERS, **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_a_fault_spec_reads_method_path_status_and_options() -> None:
    assert parse_fault("get /v1/assistants* 429 retry-after=1 retry-after-ms=1500 x2") == Fault(
        "GET", "/v1/assistants*", 429, retry_after="1", retry_after_ms=1500, times=2
    )
    assert parse_fault("POST /v1/assistants 500 times=1 after") == Fault(
        "POST", "/v1/assistants", 500, times=1, after=True
    )
    assert parse_fault("* * drop delay=20") == Fault(drop=True, delay_ms=20)


@pytest.mark.parametrize("spec", ["GET /v1/assistants", "GET / 99", "GET / 500 x", "GET / teapot"])
def test_a_bad_fault_spec_says_what_it_could_not_read(spec: str) -> None:
    with pytest.raises(ValueError, match="fault"):
        parse_fault(spec)


def test_a_fault_answers_its_status_n_times_then_stops(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.faults.add("GET /v1/assistants 503 retry-after-ms=250 x2")
    first = call(fresh_sandbox, "GET", "/assistants")
    second = call(fresh_sandbox, "GET", "/assistants")
    third = call(fresh_sandbox, "GET", "/assistants")
    assert [first[0], second[0], third[0]] == [503, 503, 200]
    assert first[1]["retry-after-ms"] == "250"
    assert first[2]["error"]["message"] == "Injected fault: 503."
    assert fresh_sandbox.faults.requests_seen == 3


def test_faults_are_set_listed_and_cleared_through_the_admin_endpoint(
    fresh_sandbox: Sandbox,
) -> None:
    admin(fresh_sandbox, "POST", "/__sandbox/faults", {"spec": "GET /v1/assistants 500"})
    admin(fresh_sandbox, "POST", "/__sandbox/faults", {"method": "POST", "path": "*", "drop": True})
    listed = admin(fresh_sandbox, "GET", "/__sandbox/faults")
    assert [(f["method"], f["status"], f["drop"]) for f in listed["faults"]] == [
        ("GET", 500, False),
        ("POST", None, True),
    ]
    assert call(fresh_sandbox, "GET", "/assistants")[0] == 500

    admin(fresh_sandbox, "DELETE", "/__sandbox/faults")

    assert call(fresh_sandbox, "GET", "/assistants")[0] == 200
    assert admin(fresh_sandbox, "GET", "/__sandbox/faults")["requests_seen"] == 2


def test_a_bad_spec_at_the_admin_endpoint_is_a_400(fresh_sandbox: Sandbox) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        admin(fresh_sandbox, "POST", "/__sandbox/faults", {"spec": "nonsense"})
    assert refused.value.code == 400


def test_the_same_idempotency_key_gets_the_same_answer_and_no_second_object(
    fresh_sandbox: Sandbox,
) -> None:
    body = {"model": "gpt-4o", "name": "once"}
    first = call(fresh_sandbox, "POST", "/assistants", body, **{"idempotency-key": "k1"})
    again = call(fresh_sandbox, "POST", "/assistants", body, **{"idempotency-key": "k1"})
    other = call(fresh_sandbox, "POST", "/assistants", {"model": "x"}, **{"idempotency-key": "k1"})

    assert first[2] == again[2] and again[1].get("idempotent-replayed") == "true"
    assert other[0] == 400 and other[2]["error"]["code"] == "idempotency_key_reused"
    assert len(fresh_sandbox.state.assistants.items) == 1


def test_a_revoked_key_is_refused(fresh_sandbox: Sandbox) -> None:
    admin(fresh_sandbox, "POST", "/__sandbox/keys/revoke", {"key": "gk-1"})
    status, _, body = call(
        fresh_sandbox, "GET", "/assistants", **{"x-vercel-ai-gateway-key": "gk-1"}
    )
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert (
        call(fresh_sandbox, "GET", "/assistants", **{"x-vercel-ai-gateway-key": "gk-2"})[0] == 200
    )


def test_serve_takes_faults_on_the_command_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigw", "sandbox", "serve", "--fault", "GET /v1/assistants 418 x1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        request = urllib.request.Request(url + "/assistants", headers=HEADERS)
        with pytest.raises(urllib.error.HTTPError) as first:
            urllib.request.urlopen(request, timeout=10)
        assert first.value.code == 418
        with urllib.request.urlopen(request, timeout=10) as second:
            assert second.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_a_bad_fault_spec_with_a_usage_error() -> None:
    result = aigw_process("sandbox", "serve", "--fault", "GET /v1/assistants")
    assert result.exit_code == 2 and "--fault" in result.stderr
