"""Each policy through the gateway server, driven by the SDK or plain HTTP: cache headers,
401/429/503/400/413/502/504 in OpenAI's shape, retries from sandbox faults with one row per
attempt, idempotent creates, and client retries that are not multiplied."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import openai
import pytest
from aiohttp import web

from aigw.gateway.endpoints import endpoint_of
from aigw.sandbox import Sandbox
from aigw.services.validation import validation_problem
from tests.helpers.gateway import (
    GATEWAY_KEY,
    authorised,
    gateway,
    http,
    json_answer,
    tiny_upstream,
)

ERROR_FIELDS = {"message", "type", "param", "code"}


def error_of(raw: bytes) -> dict:
    body = json.loads(raw)
    assert set(body) == {"error"} and set(body["error"]) == ERROR_FIELDS
    return body["error"]


# -- cache --------------------------------------------------------------------------------------
def test_cached_reads_say_miss_then_hit_and_a_write_makes_them_miss_again(
    fresh_sandbox: Sandbox,
) -> None:
    with gateway(fresh_sandbox.url) as running:
        client = running.client()
        fresh = {"Cache-Control": "max-age=300"}  # the design document's example
        lists = client.beta.assistants.with_raw_response
        assert lists.list(extra_headers=fresh).headers["x-aigw-cache"] == "miss"
        seen = fresh_sandbox.faults.requests_seen
        hit = lists.list(extra_headers=fresh)
        assert hit.headers["x-aigw-cache"] == "hit" and hit.parse().data == []
        assert fresh_sandbox.faults.requests_seen == seen  # the hit never went upstream
        created = client.beta.assistants.create(model="gpt-4o-mini")
        after = lists.list(extra_headers=fresh)
        assert after.headers["x-aigw-cache"] == "miss"
        assert [a.id for a in after.parse().data] == [created.id]
        bypass = lists.list(extra_headers={"Cache-Control": "no-cache"})
        assert bypass.headers["x-aigw-cache"] == "bypass"
        statuses = [r.cache_status for r in running.rows() if r.method == "GET"]
    assert statuses == ["miss", "hit", "miss", "bypass"]


def test_a_no_cache_read_goes_upstream_and_stores_nothing(fresh_sandbox: Sandbox) -> None:
    with gateway(fresh_sandbox.url) as running:
        url = f"{running.url}/assistants"
        bypass = http("GET", url, headers=authorised(**{"Cache-Control": "no-cache"}))[1]
        after = http("GET", url, headers=authorised())[1]
    assert (bypass["x-aigw-cache"], after["x-aigw-cache"]) == ("bypass", "miss")
    assert fresh_sandbox.faults.requests_seen == 2


def test_two_openai_keys_never_share_a_cache_entry(fresh_sandbox: Sandbox) -> None:
    with gateway(fresh_sandbox.url) as running:
        url = f"{running.url}/assistants"
        first = http("GET", url, headers=authorised())[1]
        other = authorised(Authorization="Bearer sk-someone-else-000000000000")
        second = http("GET", url, headers=other)[1]
    assert first["x-aigw-cache"] == "miss" and second["x-aigw-cache"] == "miss"


# -- rate limit ---------------------------------------------------------------------------------
def test_over_the_per_key_limit_is_a_429_with_retry_after_and_other_keys_go_on(
    fresh_sandbox: Sandbox,
) -> None:
    other = "gk-other-000000000000002"
    with gateway(fresh_sandbox.url, key_rate_limit="2/min", gateway_api_key_next=other) as gw:
        url = f"{gw.url}/threads"
        answers = [http("POST", url, body=b"{}", headers=authorised()) for _ in range(3)]
        assert [a[0] for a in answers] == [200, 200, 429]
        _, headers, raw = answers[2]
        assert int(headers["retry-after"]) >= 1
        assert error_of(raw)["code"] == "rate_limit_exceeded"
        assert (
            http("POST", url, body=b"{}", headers=authorised(**{"x-vercel-ai-gateway-key": other}))[
                0
            ]
            == 200
        )
        with pytest.raises(openai.RateLimitError):
            gw.client(max_retries=0).beta.threads.create()


def test_the_global_limit_counts_every_key(fresh_sandbox: Sandbox) -> None:
    other = "gk-other-000000000000002"
    with gateway(fresh_sandbox.url, rate_limit="2/min", gateway_api_key_next=other) as gw:
        url = f"{gw.url}/threads"
        first = http("POST", url, body=b"{}", headers=authorised())[0]
        second = http(
            "POST", url, body=b"{}", headers=authorised(**{"x-vercel-ai-gateway-key": other})
        )[0]
        third = http("POST", url, body=b"{}", headers=authorised())[0]
    assert (first, second, third) == (200, 200, 429)


# -- retry and idempotency -----------------------------------------------------------------------
def test_upstream_errors_are_retried_with_one_row_per_attempt(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.faults.add("GET /v1/assistants 503 retry-after-ms=10 x2")
    with gateway(fresh_sandbox.url) as running:
        assert running.client(max_retries=0).beta.assistants.list().data == []
        rows = running.rows()
    assert [(r.attempt, r.status_code) for r in rows] == [(1, 503), (2, 503), (3, 200)]
    assert len({r.call_id for r in rows}) == 1


def test_a_create_whose_answer_was_lost_is_retried_with_the_same_key_and_made_once(
    fresh_sandbox: Sandbox,
) -> None:
    fresh_sandbox.faults.add("POST /v1/assistants 500 retry-after-ms=10 x1 after")
    with gateway(fresh_sandbox.url) as running:
        client = running.client(max_retries=0)
        made = client.beta.assistants.create(model="gpt-4o-mini")
        assert [a.id for a in client.beta.assistants.list()] == [made.id]
        creates = [r for r in running.rows() if r.method == "POST"]
    assert [(r.attempt, r.status_code) for r in creates] == [(1, 500), (2, 200)]


def test_a_creates_key_is_in_the_shared_store_before_an_answer_the_client_would_retry(
    isolated_env,
) -> None:
    statuses = iter([200, 500, 200])
    headers = authorised(**{"Content-Type": "application/json"})
    # A long commit window: the answer that may be retried makes the keys be written.
    with (
        tiny_upstream(lambda request: json_answer({}, status=next(statuses))) as upstream,
        gateway(upstream.url, max_retries=0, commit_window=10) as running,
    ):
        done = http("POST", f"{running.url}/threads", body=b"{}", headers=headers)
        failed = http("POST", f"{running.url}/assistants", body=b'{"model":"m"}', headers=headers)
        store = sqlite3.connect(running.settings.state_db_path)
        try:
            written = [key for (key,) in store.execute("SELECT key FROM idempotency_keys")]
        finally:
            store.close()
        retry = {**headers, "x-stainless-retry-count": "1"}
        retried = http("POST", f"{running.url}/threads", body=b"{}", headers=retry)
    sent = [seen.headers["idempotency-key"] for seen in upstream.seen]
    assert (done[0], failed[0], retried[0]) == (200, 500, 200)
    assert sent[1] in written
    assert sent[2] == sent[0]  # a retry on the same worker finds its first try's key at once


def test_a_retry_after_the_clients_own_timeout_finds_the_key_on_another_worker(
    isolated_env,
) -> None:
    answered = threading.Event()

    async def slow_first(request):
        if not answered.is_set():
            answered.set()
            await asyncio.sleep(2)  # longer than the client waits
        return json_answer({"id": "thread_1"})

    headers = authorised(**{"Content-Type": "application/json"})
    retry = {**headers, "x-stainless-retry-count": "1"}
    # Two workers of one AIGW_HOME, with a log commit window longer than the client's wait.
    with (
        tiny_upstream(slow_first) as upstream,
        gateway(upstream.url, max_retries=0, commit_window=3) as a,
        gateway(upstream.url, max_retries=0, commit_window=3) as b,
    ):
        with pytest.raises(TimeoutError):
            http("POST", f"{a.url}/threads", body=b"{}", headers=headers, timeout=0.5)
        retried = http("POST", f"{b.url}/threads", body=b"{}", headers=retry)
    sent = [seen.headers["idempotency-key"] for seen in upstream.seen]
    assert retried[0] == 200
    assert len(sent) == 2 and sent[1] == sent[0]


def test_a_clients_own_retries_get_no_gateway_retries_on_top(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.faults.add("GET /v1/assistants 503 retry-after-ms=10")
    with gateway(fresh_sandbox.url, max_retries=3, breaker_failures=50) as running:
        with pytest.raises(openai.InternalServerError):
            running.client(max_retries=2).beta.assistants.list()
        attempts = [r.attempt for r in running.rows()]
    # 4 attempts for the client's first try, then one for each of its 2 retries (not 4 × 3).
    assert attempts == [1, 2, 3, 4, 1, 1]


# -- circuit breaker ----------------------------------------------------------------------------
def test_an_open_circuit_answers_503_saying_when_it_probes(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.faults.add("* * 502")
    with gateway(fresh_sandbox.url, breaker_failures=2, max_retries=0) as running:
        url = f"{running.url}/assistants"
        first, second = (http("GET", url, headers=authorised())[0] for _ in range(2))
        seen = fresh_sandbox.faults.requests_seen
        status, headers, raw = http("GET", url, headers=authorised())
        ready = http("GET", running.url.removesuffix("/v1") + "/readyz")
    assert (first, second) == (502, 502)
    assert status == 503 and int(headers["retry-after"]) >= 1
    error = error_of(raw)
    assert error["code"] == "circuit_open" and "next probe in" in error["message"]
    assert fresh_sandbox.faults.requests_seen == seen
    assert ready[0] == 503 and json.loads(ready[2])["upstream"]["circuit"] == "open"


def test_a_streamed_probe_reports_to_the_breaker_when_its_client_left_before_the_answer() -> None:
    answered: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        if not answered:  # the failure that opens the circuit
            answered.append("502")
            return json_answer({"error": {"message": "down"}}, status=502)
        await asyncio.sleep(0.5)  # the probe's answer comes after its client gave up
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: thread.run.created\ndata: {}\n\n")
        await response.write_eof()
        answered.append("stream")
        return response

    settings = {"breaker_failures": 1, "breaker_cooldown": 0.3, "max_retries": 0}
    with tiny_upstream(answer) as upstream, gateway(upstream.url, **settings) as gw:
        assert http("POST", f"{gw.url}/threads", headers=authorised())[0] == 502
        time.sleep(0.4)  # the cool-down is over: the next call is the probe
        body = json.dumps({"assistant_id": "asst_abc", "stream": True}).encode()
        headers = authorised(**{"Content-Type": "application/json"})
        url = f"{gw.url}/threads/thread_abc/runs"
        with pytest.raises(OSError):  # the client's own timeout
            http("POST", url, body=body, headers=headers, timeout=0.2)
        host, deadline = gw.runtime.upstream_host, time.monotonic() + 5
        row = gw.runtime.local.breaker_get(host)
        while row is not None and row.state != "closed" and time.monotonic() < deadline:
            time.sleep(0.05)
            row = gw.runtime.local.breaker_get(host)
    assert answered == ["502", "stream"]
    assert row is not None and row.state == "closed"  # not stuck half-open until its timeout


# -- validation and bad input -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "param", "code"),
    [
        ("GET", "/assistants/thread_abc", None, "assistant_id", "invalid_id"),
        ("POST", "/assistants", {"name": "x"}, "model", "missing_required_parameter"),
        (
            "POST",
            "/assistants",
            {"model": "m", "name": "n" * 300},
            "name",
            "string_above_max_length",
        ),
        (
            "POST",
            "/threads",
            {"metadata": {str(i): "v" for i in range(17)}},
            "metadata",
            "invalid_value",
        ),
        ("GET", "/assistants?limit=500", None, "limit", "invalid_value"),
    ],
)
def test_requests_the_cli_would_refuse_are_a_400_before_anything_is_sent(
    fresh_sandbox: Sandbox, method: str, path: str, body: dict | None, param: str, code: str
) -> None:
    with gateway(fresh_sandbox.url) as running:
        data = json.dumps(body).encode() if body is not None else None
        headers = authorised(**{"Content-Type": "application/json"})
        status, _, raw = http(method, running.url + path, body=data, headers=headers)
        assert running.rows() == []
    error = error_of(raw)
    assert status == 400 and error["type"] == "invalid_request_error"
    assert error["param"] == param and error["code"] == code
    assert fresh_sandbox.faults.requests_seen == 0


def test_a_message_with_content_parts_is_left_to_the_upstream(fresh_sandbox: Sandbox) -> None:
    with gateway(fresh_sandbox.url) as running:
        client = running.client()
        thread = client.beta.threads.create()
        message = client.beta.threads.messages.create(
            thread.id, role="user", content=[{"type": "text", "text": "parts"}]
        )
    assert message.content[0].text.value == "parts"


def test_malformed_json_is_a_400_and_an_oversized_body_a_413(fresh_sandbox: Sandbox) -> None:
    with gateway(fresh_sandbox.url, max_body_bytes=4096) as running:
        headers = authorised(**{"Content-Type": "application/json"})
        bad = http("POST", f"{running.url}/threads", body=b'{"metadata": ', headers=headers)
        big = http("POST", f"{running.url}/threads", body=b" " * 5000, headers=headers)
    assert bad[0] == 400 and error_of(bad[2])["code"] == "invalid_json"
    assert big[0] == 413 and error_of(big[2])["code"] == "request_too_large"
    assert fresh_sandbox.faults.requests_seen == 0


# -- bad upstreams ------------------------------------------------------------------------------
def test_an_unreachable_upstream_is_a_502_and_is_logged() -> None:
    with tiny_upstream(lambda request: json_answer({})) as gone:
        url = gone.url
    with gateway(url, max_retries=0) as running:
        status, _, raw = http("GET", f"{running.url}/assistants", headers=authorised())
        (row,) = running.rows()
    assert status == 502 and error_of(raw)["code"] == "upstream_unreachable"
    assert row.status_code is None and "unreachable" in (row.error_message or "")


def test_an_upstream_past_the_deadline_is_a_504(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.faults.add("GET /v1/assistants delay=2000 x1")
    with gateway(fresh_sandbox.url, timeout=0.3, max_retries=0) as running:
        status, _, raw = http("GET", f"{running.url}/assistants", headers=authorised())
    assert status == 504 and error_of(raw)["code"] == "upstream_timeout"


def test_concurrent_clients_each_get_their_answer_and_their_rows(fresh_sandbox: Sandbox) -> None:
    with gateway(fresh_sandbox.url) as running:
        client = running.client()
        made: list[str] = []

        def work() -> None:
            for _ in range(10):
                made.append(client.beta.threads.create().id)

        workers = [threading.Thread(target=work) for _ in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        rows = running.rows()
    assert len(set(made)) == 80
    assert sorted(r.thread_id or "" for r in rows) == sorted(made)


def test_the_gateway_key_is_checked_before_anything_else(fresh_sandbox: Sandbox) -> None:
    with gateway(fresh_sandbox.url) as running:
        status, _, raw = http("POST", f"{running.url}/threads", body=b"{not json")
    assert status == 401 and error_of(raw)["code"] == "invalid_gateway_key"
    assert GATEWAY_KEY not in raw.decode()


def test_fields_the_cli_does_not_know_are_left_to_the_upstream_and_the_rest_still_checked() -> None:
    runs = endpoint_of("/v1/threads/thread_abc/runs")
    streamed = {"assistant_id": "asst_abc", "stream": True, "tool_choice": "auto"}
    too_long = {**streamed, "instructions": "x" * 256_001}
    assert validation_problem("POST", runs, streamed, {}, prefixes=True) is None
    problem = validation_problem("POST", runs, too_long, {}, prefixes=True)
    assert problem is not None
    assert (problem.param, problem.code) == ("instructions", "string_above_max_length")
