"""Running the gateway: `aigw doctor --gateway-url` against a real `aigw gateway serve`, slow
clients cut off, /metrics summed across --workers, and the background sync to a real Postgres
while serving (an outage there never fails a request)."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from http.client import HTTPConnection
from pathlib import Path

import psycopg
import pytest

from aigw.sandbox import Sandbox
from tests.helpers import hostile
from tests.helpers.cli import Cli
from tests.helpers.gateway import (
    GATEWAY_KEY,
    KEY_HEADER,
    authorised,
    gateway,
    http,
    serve_process,
)
from tests.helpers.hostile import Handler
from tests.test_gateway_process import readiness, wait_until


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split("/")[0].split(":")
    return host, int(port)


# -- aigw doctor --gateway-url ------------------------------------------------------------------


def test_doctor_checks_a_running_gateway(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_API_KEY", GATEWAY_KEY)
    server = serve_process("--upstream", fresh_sandbox.url)
    try:
        healthy = cli("doctor", "--gateway-url", server.url, "--json")
        root = server.url.removesuffix("/v1")
        without_v1 = cli("doctor", "--gateway-url", root)
        monkeypatch.setenv("GATEWAY_API_KEY", "gk-not-the-gateways-key-0000")
        refused = cli("doctor", "--gateway-url", server.url)
    finally:
        code, err = server.stop()
    assert code == 0, err
    assert healthy.exit_code == 0, healthy.stdout
    report = json.loads(healthy.stdout)
    assert report["ok"] is True
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses == {
        "gateway": "ok",
        "gateway ready": "ok",
        "gateway key": "ok",
        "gateway upstream": "ok",
        "gateway sync": "ok",
    }
    assert without_v1.exit_code == 0, without_v1.stdout
    assert refused.exit_code == 1
    assert re.search(r"✗ gateway key +GATEWAY_API_KEY \(…0000\) refused", refused.stdout)
    assert "gk-not-the-gateways-key" not in refused.stdout  # the key itself is never shown


def test_doctor_names_an_open_circuit_and_an_unreachable_gateway(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_API_KEY", GATEWAY_KEY)
    dead = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    server = serve_process(
        "--upstream", dead, env={"AIGW_BREAKER_FAILURES": "1", "AIGW_MAX_RETRIES": "0"}
    )
    try:
        assert http("GET", f"{server.url}/assistants", headers=authorised())[0] == 502
        opened = cli("doctor", "--gateway-url", server.url)
    finally:
        server.stop()
    gone = cli("doctor", "--gateway-url", server.url)  # the same URL, nothing serving now
    assert opened.exit_code == 1
    assert "✗ gateway upstream" in opened.stdout and "circuit open" in opened.stdout
    assert "aigw breaker reset 127.0.0.1:9" in opened.stdout
    assert gone.exit_code == 4
    assert "cannot reach" in gone.stdout and "– gateway key" in gone.stdout


def test_doctor_gateway_url_with_smoke_or_not_a_url_is_a_usage_error(cli: Cli) -> None:
    result = cli("doctor", "--gateway-url", "http://127.0.0.1:9/v1", "--smoke")
    assert result.exit_code == 2
    assert "aigw --gateway-url URL doctor --smoke" in result.stderr
    not_a_url = cli("doctor", "--gateway-url", "localhost:8787")
    assert not_a_url.exit_code == 2
    assert not_a_url.stderr.startswith("error: --gateway-url must be an http(s) URL")


READY = (
    b'{"status": "ready", "in_flight": 0, "local_store": {"writable": true},'
    b' "upstream": {"host": "up:443", "circuit": "closed"}, "log_rows": {"remote": null}}'
)


@pytest.mark.parametrize("silent_on", ["/readyz", "/v1/assistants"])
def test_doctor_says_in_one_line_when_the_gateway_stops_answering_mid_check(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, silent_on: str
) -> None:
    def answer(h: Handler) -> None:
        if h.path.startswith(silent_on):
            h.close_connection = True  # no answer at all: the connection closes
        elif h.path == "/healthz":
            h.json(200, b'{"status": "ok"}')
        else:
            h.json(200 if h.path == "/readyz" else 401, READY)

    monkeypatch.setenv("GATEWAY_API_KEY", GATEWAY_KEY)
    gateway_like, stop = hostile.start(answer)
    try:
        result = cli("doctor", "--gateway-url", gateway_like.url)
    finally:
        stop()
    assert result.exit_code == 4, result.stdout + result.stderr
    assert f"gave no answer on {silent_on.removeprefix('/v1')}" in result.stdout
    assert "RemoteDisconnected" in result.stdout and result.stderr == ""


def test_doctor_does_not_follow_a_redirect_with_the_gateway_key(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere, stop_elsewhere = hostile.start(lambda h: h.json(200, b"[]"))
    other = elsewhere.url.removesuffix("/v1")

    def answer(h: Handler) -> None:
        if h.path == "/healthz":
            h.json(200, b'{"status": "ok"}')
        elif h.path == "/readyz":
            h.json(200, READY)
        else:
            h.json(302, b"{}", location=f"{other}{h.path}")

    monkeypatch.setenv("GATEWAY_API_KEY", GATEWAY_KEY)
    gateway_like, stop = hostile.start(answer)
    try:
        result = cli("doctor", "--gateway-url", gateway_like.url)
    finally:
        stop()
        stop_elsewhere()
    assert [r.path for r in gateway_like.received][-1] == "/v1/assistants?limit=0"
    assert elsewhere.received == []  # the key never left for the other host
    assert result.exit_code == 1
    host = other.removeprefix("http://")
    assert f"the gateway redirected to {host}; not followed" in result.stdout


# -- slow clients -------------------------------------------------------------------------------


def test_a_client_sending_its_headers_byte_by_byte_is_cut_off(sandbox: Sandbox) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Pad: " + b"a" * 300 + b"\r\n\r\n"
    with gateway(sandbox.url, header_timeout=0.5) as running:
        sent, closed = 0, False
        with socket.create_connection(host_port(running.url), timeout=10) as conn:
            # One byte every 20 ms: the whole request would take 6.5 s, the bound is 0.5 s.
            while sent < len(request) and not closed:
                try:
                    conn.send(request[sent : sent + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                sent += 1
                if select.select([conn], [], [], 0.02)[0]:
                    closed = conn.recv(1024) == b""
        # A prompt client on its own connection is served meanwhile and after.
        status, _, _ = http("GET", running.url.removesuffix("/v1") + "/healthz")
    assert closed, "the gateway kept waiting for the headers"
    assert sent < len(request)
    assert status == 200


def test_a_body_that_does_not_arrive_in_time_is_a_408(sandbox: Sandbox) -> None:
    with (
        gateway(sandbox.url, timeout=0.5) as running,
        socket.create_connection(host_port(running.url), timeout=10) as conn,
    ):
        conn.sendall(
            b"POST /v1/threads HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n"
            + f"{KEY_HEADER}: {GATEWAY_KEY}\r\n\r\n".encode()
            + b'{"metadata": '  # and the other 87 bytes never come
        )
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := conn.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert running.rows() == []  # nothing went upstream


# -- /metrics with several workers ------------------------------------------------------------


def _requests_counted(text: str) -> float:
    return sum(
        float(m.group(1))
        for m in re.finditer(
            r'^aigw_gateway_requests_total\{endpoint="/v1/threads",method="POST",status="200"\} '
            r"(\S+)$",
            text,
            re.M,
        )
    )


def test_metrics_of_any_worker_count_the_requests_of_all(fresh_sandbox: Sandbox) -> None:
    server = serve_process("--upstream", fresh_sandbox.url, "--workers", "2")
    host, port = host_port(server.url)
    connections: dict[int, HTTPConnection] = {}
    try:
        # A keep-alive connection stays with the worker that accepted it; /readyz says which.
        deadline = time.monotonic() + 30
        while len(connections) < 2 and time.monotonic() < deadline:
            conn = HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/readyz")
            worker = json.loads(conn.getresponse().read())["worker"]
            if worker in connections:
                conn.close()
            else:
                connections[worker] = conn
        assert sorted(connections) == [0, 1], "never reached both workers"
        served = {0: 3, 1: 5}  # different counts: a per-worker view could not show 8 on both
        for worker, count in served.items():
            for _ in range(count):
                connections[worker].request("POST", "/v1/threads", body=b"{}", headers=authorised())
                assert connections[worker].getresponse().read()
        scraped = {}
        for worker, conn in connections.items():
            conn.request("GET", "/metrics")
            scraped[worker] = _requests_counted(conn.getresponse().read().decode())
    finally:
        for conn in connections.values():
            conn.close()
        code, err = server.stop()
    assert scraped == {0: 8.0, 1: 8.0}
    assert code == 0, err


# -- the background sync while serving ---------------------------------------------------------


def _remote_rows(url: str) -> int:
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute("SELECT count(*) FROM ai_gateway_logs").fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.postgres
def test_the_sync_timer_moves_rows_to_postgres_and_an_outage_fails_no_request(
    fresh_sandbox: Sandbox, migrated_db: str, pg_admin_url: str, isolated_env: Path
) -> None:
    env = {"SUPABASE_DB_URL": migrated_db, "AIGW_SYNC_INTERVAL": "200ms", "AIGW_SYNC_BUDGET": "1s"}
    server = serve_process("--upstream", fresh_sandbox.url, env=env)
    try:
        for _ in range(5):
            assert http("POST", f"{server.url}/threads", body=b"{}", headers=authorised())[0] == 200
        wait_until(lambda: _remote_rows(migrated_db) == 5, "the timer to sync 5 rows")
        # the local cursor moves just after the remote commit
        wait_until(
            lambda: readiness(server.url)["log_rows"]["pending_sync"] == 0,
            "the synced rows to leave pending_sync",
        )
        # The outage: the database goes away while the gateway serves.
        name = migrated_db.rpartition("/")[2]
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        statuses = [
            http("POST", f"{server.url}/threads", body=b"{}", headers=authorised())[0]
            for _ in range(5)
        ]
        wait_until(
            lambda: readiness(server.url)["log_rows"]["sync_error"] is not None,
            "a sync attempt to fail",
        )
        ready = readiness(server.url)
    finally:
        code, err = server.stop()
    assert statuses == [200] * 5
    assert ready["status"] == "ready"  # the remote store is not the gateway's readiness
    assert ready["log_rows"]["pending_sync"] == 5
    assert code == 0, err
    assert "rows wait in the local store" in err  # said once at shutdown, no traceback
    assert "Traceback" not in err
