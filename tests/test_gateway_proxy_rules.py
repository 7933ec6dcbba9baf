"""What the gateway forwards and what it never does: header rules, no open proxy, no
redirects followed, bounded answers, several workers sharing one machine's state."""

from __future__ import annotations

import json
import socket

from aiohttp import web

from aigw.sandbox import Sandbox
from tests.helpers.gateway import (
    GATEWAY_KEY,
    KEY_HEADER,
    OPENAI_KEY,
    authorised,
    gateway,
    http,
    json_answer,
    serve_process,
    tiny_upstream,
)

THREAD = {"id": "thread_1", "object": "thread", "created_at": 1, "metadata": {}}


def raw_request(url: str, text: str) -> bytes:
    """Send `text` as the whole HTTP request, byte for byte; the answer's bytes."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(text.encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_upstream_gets_what_it_needs_and_nothing_of_the_gateways() -> None:
    with tiny_upstream(lambda request: json_answer(THREAD)) as upstream:
        with gateway(upstream.url) as running:
            client = running.client(headers={"x-aigw-user-id": "u-1"})
            client.beta.threads.create(extra_query={"probe": "1"})
        (seen,) = upstream.seen
    assert seen.method == "POST" and seen.path_qs == "/v1/threads?probe=1"
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"  # "the same OpenAI key"
    assert seen.headers["openai-beta"] == "assistants=v2"
    assert seen.headers["idempotency-key"].startswith("aigw-")  # added: the create is safe to retry
    assert KEY_HEADER not in seen.headers and "x-aigw-user-id" not in seen.headers
    assert GATEWAY_KEY not in json.dumps(seen.headers)


def test_configured_upstream_credentials_replace_the_clients() -> None:
    with tiny_upstream(lambda request: json_answer(THREAD)) as upstream:
        own = {"upstream_api_key": "sk-gateway-own-0000000000", "upstream_gateway_keys": "gk-up-1"}
        with gateway(upstream.url, **own) as running:
            running.client().beta.threads.create()
        (seen,) = upstream.seen
    assert seen.headers["authorization"] == "Bearer sk-gateway-own-0000000000"
    assert seen.headers[KEY_HEADER] == "gk-up-1"


def test_upstream_gateway_keys_rotate_on_401_and_the_working_one_is_remembered() -> None:
    def answer(request: web.Request) -> web.Response:
        if request.headers.get(KEY_HEADER) != "gk-up-new":
            return json_answer({"error": {"message": "bad key", "type": "x"}}, status=401)
        return json_answer(THREAD)

    with tiny_upstream(answer) as upstream:
        keys = {"upstream_gateway_keys": "gk-up-old, gk-up-new"}
        with gateway(upstream.url, **keys) as running:
            client = running.client(max_retries=0)
            client.beta.threads.create()
            client.beta.threads.create()
        sent = [s.headers[KEY_HEADER] for s in upstream.seen]
    assert sent == ["gk-up-old", "gk-up-new", "gk-up-new"]


def test_an_absolute_request_target_cannot_choose_the_host() -> None:
    with tiny_upstream(lambda request: json_answer({"object": "list", "data": []})) as upstream:
        with gateway(upstream.url) as running:
            answer = raw_request(
                running.url,
                "GET http://169.254.169.254/v1/assistants HTTP/1.1\r\n"
                "Host: 169.254.169.254\r\n"
                f"{KEY_HEADER}: {GATEWAY_KEY}\r\nConnection: close\r\n\r\n",
            )
        assert answer.startswith(b"HTTP/1.1 200")
        assert [s.path_qs for s in upstream.seen] == ["/v1/assistants"]


def test_dot_segments_never_leave_v1() -> None:
    with tiny_upstream(lambda request: json_answer({})) as upstream:
        with gateway(upstream.url) as running:
            for path in ("/v1/../admin", "/v1/%2e%2e/admin", "/v1/assistants/../../x"):
                answer = raw_request(
                    running.url,
                    f"GET {path} HTTP/1.1\r\nHost: x\r\n{KEY_HEADER}: {GATEWAY_KEY}\r\n"
                    "Connection: close\r\n\r\n",
                )
                status = int(answer.split(b" ", 2)[1])
                assert status in (400, 401, 404), (path, answer[:200])
        assert all(not s.path_qs.startswith("/admin") and s.path_qs != "/x" for s in upstream.seen)
        assert all(s.path_qs.startswith("/v1/") for s in upstream.seen)


def test_a_redirect_to_another_host_is_not_followed() -> None:
    def answer(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("http://collector.example/v1/threads")

    with tiny_upstream(answer) as upstream:
        with gateway(upstream.url, max_retries=0) as running:
            status, _, raw = http(
                "POST", f"{running.url}/threads", body=b"{}", headers=authorised()
            )
            (row,) = running.rows()
        assert len(upstream.seen) == 1
    error = json.loads(raw)["error"]
    assert status == 502 and error["code"] == "upstream_redirect"
    assert "collector.example" in error["message"]
    assert row.status_code == 307 and "redirect" in (row.error_message or "")


def test_an_answer_over_the_cap_is_cut_off_with_an_error() -> None:
    big = {"object": "thread", "id": "thread_1", "metadata": {"x": "y" * 10_000}}
    with tiny_upstream(lambda request: json_answer(big)) as upstream:
        with gateway(upstream.url, max_body_bytes=4096, max_retries=0) as running:
            status, _, raw = http("GET", f"{running.url}/threads/thread_1", headers=authorised())
            (row,) = running.rows()
        assert len(upstream.seen) == 1
    assert status == 502 and json.loads(raw)["error"]["code"] == "upstream_too_large"
    assert "AIGW_MAX_BODY_BYTES" in (row.error_message or "")


def test_two_workers_share_the_rate_limit_and_both_drain(fresh_sandbox: Sandbox) -> None:
    server = serve_process(
        "--upstream", fresh_sandbox.url, "--workers", "2", env={"AIGW_KEY_RATE_LIMIT": "3/min"}
    )
    try:
        # urllib opens a new connection per request: the kernel spreads them over the workers
        statuses = [
            http("POST", f"{server.url}/threads", body=b"{}", headers=authorised())[0]
            for _ in range(8)
        ]
    finally:
        code, err = server.stop()
    assert sorted(statuses) == [200] * 3 + [429] * 5
    assert code == 0, err
