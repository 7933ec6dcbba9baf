"""Two gateway instances, each with its own AIGW_HOME (two machines, as far as aigw can tell),
sharing one AIGW_STATE_URL: one rate limit, one breaker, one cache — and when Redis stops,
each keeps serving from its own state and returns to the shared one when Redis answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from aigw.errors import ExitCode
from aigw.gateway.policies.cache import MAX_CLIENT_AGE
from aigw.sandbox import Sandbox
from aigw.storage.base import LogFilter
from aigw.storage.redis_state import RedisState
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.cli import point_at
from tests.helpers.gateway import RunningGateway, authorised, gateway, http
from tests.helpers.processes import aigw_process
from tests.helpers.redis import PASSWORD, RedisServer


@contextmanager
def two_gateways(
    upstream: str, state_url: str, tmp_path: Path, **settings: object
) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    with ExitStack() as stack:
        a, b = (
            stack.enter_context(
                gateway(upstream, home=tmp_path / name, state_url=state_url, **settings)
            )
            for name in ("machine-a", "machine-b")
        )
        yield a, b


def readyz(running: RunningGateway) -> tuple[int, dict]:
    status, _, raw = http("GET", running.url.removesuffix("/v1") + "/readyz")
    return status, json.loads(raw)


def test_two_instances_admit_exactly_the_limit_between_them(
    fresh_sandbox: Sandbox, redis_url: str, tmp_path: Path
) -> None:
    statuses: list[int] = []
    lock = threading.Lock()
    # A generous state timeout: ten client threads share this process's GIL with both
    # gateways, and one slow Redis call would fail open to each machine's own limit.
    with two_gateways(
        fresh_sandbox.url, redis_url, tmp_path, rate_limit="20/hour", cache_ttl=0, state_timeout=2
    ) as (a, b):

        def send(instance: RunningGateway) -> None:
            for _ in range(10):
                status = http("GET", f"{instance.url}/assistants", headers=authorised())[0]
                with lock:
                    statuses.append(status)

        senders = [threading.Thread(target=send, args=(g,)) for g in (a, b) * 5]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(50)
    assert len(statuses) == 100
    assert statuses.count(200) == 20 and statuses.count(429) == 80
    assert fresh_sandbox.faults.requests_seen == 20


def test_a_breaker_opened_through_one_instance_refuses_on_the_other(
    fresh_sandbox: Sandbox, redis_url: str, tmp_path: Path
) -> None:
    fresh_sandbox.faults.add("* * 502")
    with two_gateways(
        fresh_sandbox.url, redis_url, tmp_path, breaker_failures=2, max_retries=0
    ) as (a, b):
        opened = [http("GET", f"{a.url}/assistants", headers=authorised())[0] for _ in range(2)]
        status, _, raw = http("GET", f"{b.url}/assistants", headers=authorised())
        ready_b = readyz(b)
    assert opened == [502, 502]
    assert status == 503 and json.loads(raw)["error"]["code"] == "circuit_open"
    assert fresh_sandbox.faults.requests_seen == 2  # B never called the upstream
    assert ready_b[1]["upstream"]["circuit"] == "open" and ready_b[1]["state"] == "shared"


def test_a_read_cached_by_one_instance_is_a_hit_on_the_other_until_a_write_through_it(
    fresh_sandbox: Sandbox, redis_url: str, tmp_path: Path
) -> None:
    with two_gateways(fresh_sandbox.url, redis_url, tmp_path) as (a, b):
        created = a.client().beta.assistants.create(model="gpt-4o-mini", name="one")
        url = f"/assistants/{created.id}"
        first = http("GET", a.url + url, headers=authorised())
        on_b = http("GET", b.url + url, headers=authorised())
        seen = fresh_sandbox.faults.requests_seen
        b.client().beta.assistants.update(created.id, name="two")
        after = http("GET", a.url + url, headers=authorised())
    assert first[1]["x-aigw-cache"] == "miss"
    assert on_b[1]["x-aigw-cache"] == "hit" and json.loads(on_b[2])["name"] == "one"
    assert after[1]["x-aigw-cache"] == "miss" and json.loads(after[2])["name"] == "two"
    assert fresh_sandbox.faults.requests_seen == seen + 2  # the update, then A's fresh read


def test_redis_stopped_mid_run_degrades_to_local_state_then_shares_again(
    fresh_sandbox: Sandbox, own_redis: RedisServer, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    with two_gateways(fresh_sandbox.url, own_redis.url, tmp_path, rate_limit="1000/min") as (
        a,
        b,
    ):
        assert readyz(a) == (200, readyz(a)[1]) and readyz(a)[1]["state"] == "shared"
        own_redis.stop()
        served = [http("GET", f"{g.url}/assistants", headers=authorised()) for g in (a, b, a)]
        ready_down = readyz(a)
        own_redis.start()
        deadline = time.monotonic() + 10
        while readyz(a)[1]["state"] != "shared" and time.monotonic() < deadline:
            time.sleep(0.1)
        ready_again = readyz(a)
        cached = [http("GET", f"{a.url}/assistants", headers=authorised()) for _ in range(2)]
    assert [s for s, _, _ in served] == [200, 200, 200]
    assert [h["x-aigw-cache"] for _, h, _ in served] == ["bypass"] * 3  # no cache while down
    assert ready_down[0] == 200 and ready_down[1]["state"] == "degraded"
    assert ready_again[1]["state"] == "shared"
    assert [h["x-aigw-cache"] for _, h, _ in cached] == ["miss", "hit"]
    err = capfd.readouterr().err
    assert err.count("does not answer") == 2  # once per instance, not once per request
    assert "answers again" in err
    assert PASSWORD not in err and "redis://****@127.0.0.1" in err


def test_a_write_while_redis_is_slow_drops_the_shared_copy_once_it_answers(
    fresh_sandbox: Sandbox, redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    with two_gateways(fresh_sandbox.url, redis_url, tmp_path) as (a, b):
        created = a.client().beta.assistants.create(model="gpt-4o-mini", name="one")
        url = f"/assistants/{created.id}"
        assert http("GET", b.url + url, headers=authorised())[1]["x-aigw-cache"] == "miss"
        redis_server.pause(1500)  # every state call of A's write times out: A degrades
        a.client().beta.assistants.update(created.id, name="two")
        during = readyz(a)[1]["state"]
        deadline = time.monotonic() + 10
        while readyz(a)[1]["state"] != "shared" and time.monotonic() < deadline:
            time.sleep(0.1)  # A's held invalidation goes with its first answered call
        status, headers, raw = http("GET", b.url + url, headers=authorised())
    assert during == "degraded"
    assert status == 200 and headers["x-aigw-cache"] == "miss"
    assert json.loads(raw)["name"] == "two"


def test_with_fail_closed_the_rate_limit_refuses_while_redis_is_down(
    fresh_sandbox: Sandbox, own_redis: RedisServer, tmp_path: Path
) -> None:
    settings = {"rate_limit": "1000/min", "rate_limit_fallback": "fail-closed"}
    with gateway(fresh_sandbox.url, home=tmp_path / "a", state_url=own_redis.url, **settings) as a:
        up = http("GET", f"{a.url}/assistants", headers=authorised())[0]
        own_redis.stop()
        status, headers, raw = http("GET", f"{a.url}/assistants", headers=authorised())
    assert up == 200
    assert status == 503 and headers["retry-after"] == "1"
    assert json.loads(raw)["error"]["code"] == "state_unavailable"


# -- the CLI on the same state -----------------------------------------------------------------
def test_cli_processes_on_two_machines_share_the_rate_limit_through_redis(
    fresh_sandbox: Sandbox, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    for name, value in {
        "AIGW_STATE_URL": redis_url,
        "AIGW_RATE_LIMIT": "1/hour",
        "AIGW_CACHE_TTL": "0",
    }.items():
        monkeypatch.setenv(name, value)
    on_a = aigw_process("assistants", "list", env={"AIGW_HOME": str(tmp_path / "a")})
    on_b = aigw_process("--no-wait", "assistants", "list", env={"AIGW_HOME": str(tmp_path / "b")})
    assert on_a.exit_code == 0, on_a.stderr
    assert on_b.exit_code == ExitCode.RATE_LIMITED
    assert "over the rate limit AIGW_RATE_LIMIT=1/hour" in on_b.stderr
    assert fresh_sandbox.faults.requests_seen == 1


def test_a_cli_command_with_redis_down_warns_once_and_uses_the_local_state(
    fresh_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    nobody = RedisServer(tmp_path / "never-started", "redis-server")  # a free port, no server
    monkeypatch.setenv("AIGW_STATE_URL", nobody.url)
    done = aigw_process("assistants", "list")
    status = aigw_process("breaker", "status")
    assert done.exit_code == 0, done.stderr
    assert done.stderr.count("does not answer") == 1
    assert PASSWORD not in done.stderr and "redis://****@127.0.0.1" in done.stderr
    assert status.exit_code == ExitCode.DATABASE  # an operator's command needs the shared state
    assert status.stderr.startswith("error: the shared state at redis://****@")
    assert "Traceback" not in status.stderr and PASSWORD not in status.stderr


def test_the_state_url_is_masked_and_a_bad_one_is_a_config_error(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGW_STATE_URL", redis_url)
    shown = aigw_process("config", "show", "--json")
    monkeypatch.setenv("AIGW_STATE_URL", "http://127.0.0.1:6379/0")
    bad = aigw_process("config", "show")
    rows = {row["variable"]: row["value"] for row in json.loads(shown.stdout)["settings"]}
    assert rows["AIGW_STATE_URL"] == redis_url.replace(f":{PASSWORD}@", "****@")
    assert PASSWORD not in shown.stdout + shown.stderr
    assert bad.exit_code == ExitCode.CONFIG
    assert "AIGW_STATE_URL" in bad.stderr and "redis://" in bad.stderr


def test_a_clients_retry_of_a_create_on_the_other_instance_goes_with_the_same_key(
    fresh_sandbox: Sandbox, redis_url: str, tmp_path: Path
) -> None:
    body = json.dumps({"metadata": {"order": "42"}}).encode()
    headers = authorised(**{"Content-Type": "application/json"})
    with two_gateways(fresh_sandbox.url, redis_url, tmp_path) as (a, b):
        first = http("POST", f"{a.url}/threads", body=body, headers=headers)
        retried = http(
            "POST",
            f"{b.url}/threads",
            body=body,
            headers={**headers, "x-stainless-retry-count": "1"},
        )
        second_order = http("POST", f"{b.url}/threads", body=body, headers=headers)
    assert first[0] == retried[0] == second_order[0] == 200
    made, replayed, new = (json.loads(answer[2])["id"] for answer in (first, retried, second_order))
    assert replayed == made and retried[1].get("idempotent-replayed") == "true"
    assert new != made  # an identical first try is another request


class _CloseFails:
    """The Redis client as it is when Redis stops answering at shutdown: closing it raises."""

    def __init__(self, shared: object):
        self.shared = shared

    async def close(self) -> None:
        await self.shared.close()  # type: ignore[attr-defined]
        raise TimeoutError("Timeout closing connection")


def test_a_shared_state_that_fails_to_close_still_lets_the_log_rows_be_written(
    fresh_sandbox: Sandbox, redis_url: str, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    running = gateway(fresh_sandbox.url, home=tmp_path, state_url=redis_url, commit_window=10)
    with running as a:
        assert http("GET", f"{a.url}/assistants", headers=authorised())[0] == 200
        assert a.runtime.writer.pending() == 1  # committed only at shutdown (the window is 10 s)
        a.runtime.state.shared = _CloseFails(a.runtime.state.shared)  # type: ignore[attr-defined]
    store = SQLiteRepository(a.settings.state_db_path)
    try:
        rows = store.records(LogFilter())
    finally:
        store.close()
    assert len(rows) == 1
    assert "closing the shared state: TimeoutError" in capfd.readouterr().err


def test_a_state_url_redis_cannot_read_stops_the_gateway_before_it_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIGW_STATE_URL", f"redis://:{PASSWORD}@127.0.0.1:1/0?socket_timeout=abc")
    monkeypatch.setenv("GATEWAY_API_KEY", "gk-test-0000000000000001")
    started = [
        aigw_process("gateway", "serve", "--port", "0", "--workers", workers)
        for workers in ("1", "2")
    ]
    for done in started:
        assert done.exit_code == ExitCode.CONFIG, done.stderr
        assert "listening" not in done.stdout
        assert done.stderr.startswith("error: invalid AIGW_STATE_URL")
        assert "socket_timeout" in done.stderr and PASSWORD not in done.stderr


def test_the_gateway_keeps_a_cached_read_in_redis_no_longer_than_a_read_may_accept_it(
    fresh_sandbox: Sandbox, redis_url: str, tmp_path: Path
) -> None:
    with gateway(fresh_sandbox.url, home=tmp_path, state_url=redis_url, cache_ttl=300) as a:
        asked = {**authorised(), "Cache-Control": "max-age=31536000"}  # a year
        stored = http("GET", f"{a.url}/assistants", headers=authorised())
        again = http("GET", f"{a.url}/assistants", headers=asked)
    state = RedisState(redis_url, timeout=5.0)
    try:
        keys = list(state.client.scan_iter(match="aigw:cache:*"))
        kept_ms = [state.client.pttl(key) for key in keys]
    finally:
        state.close()
    assert stored[1]["x-aigw-cache"] == "miss" and again[1]["x-aigw-cache"] == "hit"
    assert len(kept_ms) == 1 and 0 < kept_ms[0] <= MAX_CLIENT_AGE * 1000


def test_identical_creates_with_the_clients_own_keys_stay_apart_and_each_retry_finds_its_own(
    fresh_sandbox: Sandbox, redis_url: str, tmp_path: Path
) -> None:
    # What docs/scaling.md advises when identical creates may be sent at once.
    body = json.dumps({"metadata": {"order": "42"}}).encode()
    headers = authorised(**{"Content-Type": "application/json"})
    with two_gateways(fresh_sandbox.url, redis_url, tmp_path) as (a, b):
        first = http(
            "POST", f"{a.url}/threads", body=body, headers={**headers, "Idempotency-Key": "k-1"}
        )
        second = http(
            "POST", f"{b.url}/threads", body=body, headers={**headers, "Idempotency-Key": "k-2"}
        )
        retried = http(
            "POST",
            f"{b.url}/threads",
            body=body,
            headers={**headers, "Idempotency-Key": "k-1", "x-stainless-retry-count": "1"},
        )
    made, other, replayed = (json.loads(answer[2])["id"] for answer in (first, second, retried))
    assert other != made
    assert replayed == made and retried[1].get("idempotent-replayed") == "true"
