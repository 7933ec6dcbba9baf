"""`aigw gateway serve` as a real process: the listening line, the drain on SIGTERM, the rows
committed before exit, and what survives a `kill -9`."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aigw.sandbox import Sandbox
from tests.helpers.gateway import authorised, http, serve_process
from tests.helpers.processes import aigw_process
from tests.helpers.rows import log_rows


def readiness(url: str) -> dict[str, Any]:
    return json.loads(http("GET", url.removesuffix("/v1") + "/readyz")[2])


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_sigterm_finishes_the_request_in_flight_commits_its_row_and_exits_0(
    fresh_sandbox: Sandbox, isolated_env: Path
) -> None:
    fresh_sandbox.faults.add("GET /v1/assistants delay=1500 x1")
    server = serve_process("--upstream", fresh_sandbox.url)
    answers: list[int] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            http("GET", f"{server.url}/assistants", headers=authorised())[0]
        )
    )
    slow.start()
    wait_until(lambda: readiness(server.url)["in_flight"] == 1, "the request to be in flight")
    server.process.send_signal(signal.SIGTERM)
    slow.join(30)
    code, err = server.stop()
    assert answers == [200]
    assert code == 0, err
    assert "Traceback" not in err
    (row,) = log_rows(isolated_env)
    assert row.endpoint == "/v1/assistants" and row.status_code == 200


def test_rows_the_writer_reports_committed_survive_kill_9(
    fresh_sandbox: Sandbox, isolated_env: Path
) -> None:
    server = serve_process("--upstream", fresh_sandbox.url)
    try:
        for _ in range(20):
            assert http("GET", f"{server.url}/assistants", headers=authorised())[0] == 200
        # The durability rule: whatever is not in `uncommitted` is on disk.
        wait_until(lambda: readiness(server.url)["log_rows"]["uncommitted"] == 0, "the commit")
    finally:
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.communicate(timeout=10)
    assert len(log_rows(isolated_env)) == 20


def test_a_port_in_use_is_one_line_and_exit_2(fresh_sandbox: Sandbox) -> None:
    server = serve_process("--upstream", fresh_sandbox.url)
    try:
        port = server.url.rsplit(":", 1)[1].split("/")[0]
        taken = aigw_process("gateway", "serve", "--port", port, env={"GATEWAY_API_KEY": "gk-x"})
        assert taken.exit_code == 2
        assert "cannot listen on 127.0.0.1" in taken.stderr and "Traceback" not in taken.stderr
    finally:
        server.stop()


def test_without_a_gateway_key_it_refuses_to_start_with_exit_3() -> None:
    refused = aigw_process("gateway", "serve", "--port", "0")
    assert refused.exit_code == 3
    assert "GATEWAY_API_KEY" in refused.stderr and "Traceback" not in refused.stderr


def test_sigterm_while_workers_are_still_starting_is_a_clean_exit(fresh_sandbox: Sandbox) -> None:
    server = serve_process("--upstream", fresh_sandbox.url, "--workers", "2")
    code, err = server.stop()
    assert code == 0, err
    assert "Traceback" not in err
