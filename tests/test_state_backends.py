"""One conformance suite for every shared-state backend (aigw/common/state.py): SQLite in
AIGW_HOME and Redis (a redis-server of the test session's own). The same calls, the same
answers, so the backends cannot drift apart."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aigw.common.state import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Admission,
    AsyncSharedState,
    BreakerRow,
    BreakerRule,
    CacheEntry,
    Gcra,
    SharedState,
)
from aigw.storage.local_async import BREAKER_FRESH_S, AsyncLocal
from aigw.storage.redis_state import AsyncRedisState, RedisState
from aigw.storage.state import SQLiteState
from tests.helpers.redis import RedisServer

NOW = 1_800_000_000.0
RULE = BreakerRule(failures_to_open=3, cooldown=30.0, probe_timeout=65.0)
TWO_PER_SECOND = Gcra(interval=0.5, tolerance=0.5)


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest, isolated_env) -> Iterator[SharedState]:
    """A fresh, empty state of each backend."""
    made: SharedState
    if request.param == "redis":
        made = RedisState(request.getfixturevalue("redis_url"), timeout=5.0)
    else:
        made = SQLiteState(isolated_env / "state.sqlite3")
    yield made
    made.close()


@pytest.fixture(params=["sqlite", "redis"])
def async_state(
    request: pytest.FixtureRequest, isolated_env
) -> Iterator[Callable[[], AsyncSharedState]]:
    """Opens a fresh, empty state of each backend behind the server's async interface (on the
    caller's event loop)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        yield lambda: AsyncRedisState(url, timeout=5.0)
    else:
        local = SQLiteState(isolated_env / "state.sqlite3")
        yield lambda: AsyncLocal(local)
        local.close()


def entry(key: str, tag: str, stored_at: float = NOW, body: bytes = b'{"id": 1}') -> CacheEntry:
    return CacheEntry(key, tag, "/v1/assistants", stored_at, 200, [("content-type", "x")], body)


def test_a_cache_entry_comes_back_as_it_was_stored(state: SharedState) -> None:
    stored = entry("k1", "h: assistants", body=bytes(range(256)))
    state.cache_put(stored, keep_for=3600)
    assert state.cache_get("k1") == stored
    assert state.cache_get("k2") is None


def test_dropping_a_tag_drops_its_entries_only(state: SharedState) -> None:
    state.cache_put(entry("k1", "h: assistants"), keep_for=3600)
    state.cache_put(entry("k2", "h: assistant:a"), keep_for=3600)
    state.cache_put(entry("k3", "h: thread:t"), keep_for=3600)
    assert state.cache_drop(["h: assistants", "h: assistant:a"]) == 2
    assert state.cache_get("k1") is None and state.cache_get("k2") is None
    assert state.cache_get("k3") is not None
    assert state.cache_drop(["h: nothing"]) == 0


def test_a_full_bucket_lets_its_burst_through_then_one_slot_per_interval(
    state: SharedState,
) -> None:
    taken = [state.rate_take("b", TWO_PER_SECOND, NOW, reserve=False) for _ in range(3)]
    assert taken == [0.0, 0.0, pytest.approx(0.5)]
    assert state.rate_take("b", TWO_PER_SECOND, NOW + 0.5, reserve=False) == 0.0
    assert state.rate_take("other", TWO_PER_SECOND, NOW, reserve=False) == 0.0


def test_reserving_takes_the_next_slots_in_turn(state: SharedState) -> None:
    delays = [state.rate_take("b", TWO_PER_SECOND, NOW, reserve=True) for _ in range(4)]
    assert delays == [0.0, 0.0, pytest.approx(0.5), pytest.approx(1.0)]


def test_a_pause_closes_every_slot_until_it_ends_and_never_shortens_one(
    state: SharedState,
) -> None:
    state.rate_pause("b", NOW + 3.5, NOW)
    state.rate_pause("b", NOW + 1.0, NOW)  # a shorter pause later does not lift the first
    assert state.rate_take("b", TWO_PER_SECOND, NOW, reserve=False) == pytest.approx(3.0)
    assert state.rate_reset() >= 1
    assert state.rate_take("b", TWO_PER_SECOND, NOW, reserve=False) == 0.0


def test_a_bucket_paused_for_ever_is_clamped(state: SharedState) -> None:
    state.rate_pause("b", NOW + 1e9, NOW)
    delay = state.rate_take("b", TWO_PER_SECOND, NOW, reserve=True)
    assert 0 < delay <= 600 + 1


def test_failures_open_the_circuit_and_a_success_closes_it(state: SharedState) -> None:
    for _ in range(2):
        state.breaker_record("h", NOW, RULE, failure=True, error="HTTP 503")
    assert state.breaker_get("h") == BreakerRow("h", CLOSED, 2, None, None, "HTTP 503")
    state.breaker_record("h", NOW, RULE, failure=True, error="HTTP 502")
    assert state.breaker_get("h") == BreakerRow("h", OPEN, 3, NOW, NOW + 30.0, "HTTP 502")
    state.breaker_record("h", NOW, RULE, failure=False, error=None)
    assert state.breaker_get("h") == BreakerRow("h", CLOSED, 0)


def test_a_success_on_a_quiet_circuit_writes_nothing(state: SharedState) -> None:
    state.breaker_record("h", NOW, RULE, failure=False, error="HTTP 200")
    assert state.breaker_get("h") is None
    assert state.breaker_all() == []


def test_an_open_circuit_refuses_until_its_cool_down_then_one_call_probes(
    state: SharedState,
) -> None:
    assert state.breaker_claim("h", NOW, RULE) is None  # unknown: closed
    for _ in range(3):
        state.breaker_record("h", NOW, RULE, failure=True, error="HTTP 503")
    refusing = state.breaker_claim("h", NOW + 10, RULE)
    assert refusing is not None and refusing.state == OPEN
    assert state.breaker_claim("h", NOW + 30, RULE) is None  # this call is the probe
    assert state.breaker_get("h") == BreakerRow("h", HALF_OPEN, 3, NOW, NOW + 30, "HTTP 503")
    in_flight = state.breaker_claim("h", NOW + 31, RULE)
    assert in_flight is not None and in_flight.state == HALF_OPEN
    assert state.breaker_claim("h", NOW + 30 + 65, RULE) is None  # a probe that never came back
    state.breaker_record("h", NOW + 96, RULE, failure=True, error="timeout")
    assert state.breaker_get("h") == BreakerRow("h", OPEN, 4, NOW + 96, NOW + 126, "timeout")


def test_exactly_one_of_many_concurrent_callers_becomes_the_probe(state: SharedState) -> None:
    for _ in range(3):
        state.breaker_record("h", NOW, RULE, failure=True, error="HTTP 503")
    went: list[bool] = []
    lock = threading.Lock()

    def claim() -> None:
        goes = state.breaker_claim("h", NOW + 31, RULE) is None
        with lock:
            went.append(goes)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert went.count(True) == 1 and len(went) == 16


def test_breakers_are_listed_by_host_and_reset_one_or_all(state: SharedState) -> None:
    for host in ("b", "a", "c"):
        state.breaker_record(host, NOW, RULE, failure=True, error=None)
    assert [row.host for row in state.breaker_all()] == ["a", "b", "c"]
    assert state.breaker_reset("b") == 1
    assert [row.host for row in state.breaker_all()] == ["a", "c"]
    assert state.breaker_reset() == 2
    assert state.breaker_all() == []


def test_a_remembered_key_is_kept_by_scope(state: SharedState) -> None:
    assert state.remembered_key("h") is None
    state.remember_key("h", "f1", announced=False)
    state.remember_key("h", "f2", announced=True)
    assert state.remembered_key("h") == ("f2", True)
    assert state.remembered_key("other") is None


def test_a_retry_gets_the_idempotency_key_of_its_first_try_while_it_is_kept(
    state: SharedState,
) -> None:
    first = state.idempotency_key("fp", "k1", NOW, retry=False, keep_for=600)
    again = state.idempotency_key("fp", "k2", NOW + 1, retry=True, keep_for=600)
    another_first_try = state.idempotency_key("fp", "k3", NOW + 2, retry=False, keep_for=600)
    unknown = state.idempotency_key("other", "k4", NOW + 3, retry=True, keep_for=600)
    assert (first, again, another_first_try, unknown) == ("k1", "k1", "k3", "k4")
    assert state.idempotency_key("other", "k5", NOW + 4, retry=True, keep_for=600) == "k4"


def test_a_retry_finds_its_first_trys_key_at_once_here_and_on_another_worker_once_settled(
    async_state: Callable[[], AsyncSharedState],
) -> None:
    async def scenario() -> tuple[str, ...]:
        here, there = async_state(), async_state()  # two workers over one store
        first = await here.idempotency_key("fp", "k1", NOW, retry=False, keep_for=600)
        at_once = await here.idempotency_key("fp", "k2", NOW + 1, retry=True, keep_for=600)
        await here.settle()
        elsewhere = await there.idempotency_key("fp", "k3", NOW + 2, retry=True, keep_for=600)
        newer = await there.idempotency_key("fp", "k4", NOW + 3, retry=False, keep_for=600)
        await there.close()  # writes what it kept back
        after_close = await here.idempotency_key("fp", "k5", NOW + 4, retry=True, keep_for=600)
        await here.close()
        return first, at_once, elsewhere, newer, after_close

    assert asyncio.run(scenario()) == ("k1", "k1", "k1", "k4", "k4")


def test_the_local_state_writes_first_tries_keys_within_its_window_without_being_asked(
    isolated_env,
) -> None:
    local = SQLiteState(isolated_env / "state.sqlite3")

    async def scenario() -> str:
        state = AsyncLocal(local, window=0.01)
        await state.idempotency_key("fp", "k1", NOW, retry=False, keep_for=600)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = local.idempotency_key("fp", "other", NOW + 1, retry=True, keep_for=600)
            if found != "other":
                return found
            await asyncio.sleep(0.01)
        return "never written"

    try:
        assert asyncio.run(scenario()) == "k1"
    finally:
        local.close()


def test_the_local_states_breaker_is_read_at_most_every_breaker_fresh_s(isolated_env) -> None:
    local = SQLiteState(isolated_env / "state.sqlite3")
    other = SQLiteState(isolated_env / "state.sqlite3")  # another worker

    async def scenario() -> tuple[BreakerRow | None, ...]:
        state = AsyncLocal(local)
        before = await state.breaker_claim("h", NOW, RULE)
        for _ in range(3):
            other.breaker_record("h", NOW, RULE, failure=True, error="HTTP 503")
        await asyncio.sleep(0)
        # decided from the row read at NOW, as if read together
        soon = await state.breaker_claim("h", NOW + BREAKER_FRESH_S / 2, RULE)
        later = await state.breaker_claim("h", NOW + 2 * BREAKER_FRESH_S, RULE)
        # with a cool-down shorter than that, the row is read again within half of it
        short = BreakerRule(failures_to_open=1, cooldown=BREAKER_FRESH_S / 2, probe_timeout=5)
        assert await state.breaker_claim("h2", NOW, short) is None
        other.breaker_record("h2", NOW, short, failure=True, error="HTTP 503")
        before_cool_down_ends = await state.breaker_claim("h2", NOW + short.cooldown * 0.6, short)
        # a call let go on the row read before the opening succeeds: the circuit stays open
        assert await state.breaker_claim("h3", NOW, RULE) is None
        for _ in range(3):
            other.breaker_record("h3", NOW + 0.1, RULE, failure=True, error="HTTP 503")
        await asyncio.sleep(0)
        assert await state.breaker_claim("h3", NOW + 0.2, RULE) is None  # the row of NOW
        await state.breaker_record("h3", NOW + 0.3, RULE, failure=False, error=None)
        assert local.breaker_get("h3") == BreakerRow(
            "h3", OPEN, 3, NOW + 0.1, NOW + 0.1 + RULE.cooldown, "HTTP 503"
        )
        return before, soon, later, before_cool_down_ends

    try:
        before, soon, later, short_refusal = asyncio.run(scenario())
    finally:
        other.close()
        local.close()
    assert before is None and soon is None
    assert later is not None and later.state == OPEN
    assert short_refusal is not None and short_refusal.state == OPEN


def test_a_success_clears_the_failures_another_worker_counted_since_its_last_read(
    isolated_env,
) -> None:
    local = SQLiteState(isolated_env / "state.sqlite3")
    other = SQLiteState(isolated_env / "state.sqlite3")  # another worker

    async def scenario() -> BreakerRow | None:
        state = AsyncLocal(local)
        assert await state.breaker_claim("h", NOW, RULE) is None  # read: closed, no failures
        # failure, success, failure, success, failure: never two in a row, within a second
        for step in (0.1, 0.2):
            other.breaker_record("h", NOW + step, RULE, failure=True, error="HTTP 503")
            await asyncio.sleep(0)
            await state.breaker_record("h", NOW + step + 0.05, RULE, failure=False, error=None)
        other.breaker_record("h", NOW + 0.3, RULE, failure=True, error="HTTP 503")
        return local.breaker_get("h")

    try:
        row = asyncio.run(scenario())
    finally:
        other.close()
        local.close()
    assert row is not None and row.state == CLOSED and row.failures == 1


def test_the_local_states_own_breaker_counts_are_seen_at_once_and_a_success_resets_others(
    isolated_env,
) -> None:
    local = SQLiteState(isolated_env / "state.sqlite3")
    other = SQLiteState(isolated_env / "state.sqlite3")  # another worker

    async def scenario() -> tuple[BreakerRow | None, ...]:
        state = AsyncLocal(local)
        assert await state.breaker_claim("h", NOW, RULE) is None
        for _ in range(3):
            await state.breaker_record("h", NOW, RULE, failure=True, error="HTTP 503")
        refused = await state.breaker_claim("h", NOW + 1, RULE)  # in the same turn
        other.breaker_reset("h")
        other.breaker_record("h", NOW + 2, RULE, failure=True, error="HTTP 502")
        await asyncio.sleep(0)
        await state.breaker_record("h", NOW + 3, RULE, failure=False, error=None)
        return refused, local.breaker_get("h")

    try:
        refused, after_success = asyncio.run(scenario())
    finally:
        other.close()
        local.close()
    assert refused is not None and refused.state == OPEN
    assert after_success == BreakerRow("h", CLOSED, 0)


class CountedSQLiteState(SQLiteState):
    """A worker's local state that counts the transactions taking rate-limit slots."""

    transactions = 0

    def take_ahead(self, *args: Any, **kwargs: Any) -> tuple[Admission, list[int]]:
        self.transactions += 1
        return super().take_ahead(*args, **kwargs)


def test_workers_taking_slots_ahead_never_exceed_a_limit_together(isolated_env) -> None:
    thousand_per_second = Gcra(interval=0.001, tolerance=0.999)  # a burst of 1,000
    workers = [CountedSQLiteState(isolated_env / "state.sqlite3") for _ in range(2)]

    async def scenario() -> tuple[int, int]:
        states = [AsyncLocal(local) for local in workers]
        admitted, turn, refused = 0, 0, [False, False]
        while not all(refused):
            index = turn % 2
            turn += 1
            answer = await states[index].admit([("b", thousand_per_second)], NOW, None)
            if answer.refused_by is None:
                admitted += 1
            refused[index] = answer.refused_by is not None
        # later, the unused slots have lapsed and the bucket has refilled: slots again
        later = await states[0].admit([("b", thousand_per_second)], NOW + 5, None)
        return admitted, int(later.refused_by is None)

    try:
        admitted, later = asyncio.run(scenario())
    finally:
        for local in workers:
            local.close()
    assert admitted == 1000 and later == 1
    # most requests were decided from slots taken ahead, not by a transaction each
    assert sum(w.transactions for w in workers) < admitted / 5


def test_a_slow_limit_is_decided_call_by_call_across_workers(isolated_env) -> None:
    workers = [SQLiteState(isolated_env / "state.sqlite3") for _ in range(2)]

    async def scenario() -> list[int | None]:
        first, second = (AsyncLocal(local) for local in workers)
        answers = []
        for state in (first, second, first, second):
            answers.append((await state.admit([("b", TWO_PER_SECOND)], NOW, None)).refused_by)
        return answers

    try:
        answers = asyncio.run(scenario())
    finally:
        for local in workers:
            local.close()
    assert answers == [None, None, 0, 0]  # a burst of two, whichever worker asks


def test_the_tests_own_redis_restarts_on_its_port_once_another_process_lets_it_go(
    own_redis: RedisServer,
) -> None:
    own_redis.stop()
    squatter = socket.create_server(("127.0.0.1", own_redis.port))
    threading.Timer(0.3, squatter.close).start()
    url = own_redis.url
    own_redis.start()  # fails to bind at first: tried again until the port is free
    state = RedisState(own_redis.url, timeout=5.0)
    try:
        state.remember_key("h", "f", announced=True)
        assert state.remembered_key("h") == ("f", True)
    finally:
        state.close()
    assert own_redis.url == url


def test_a_tags_index_in_redis_loses_the_entries_that_expired(redis_url: str) -> None:
    state = RedisState(redis_url, timeout=5.0)
    try:
        state.cache_put(entry("gone", "h: assistants"), keep_for=0.001)
        deadline = time.monotonic() + 5
        while state.client.exists("aigw:cache:gone") and time.monotonic() < deadline:
            time.sleep(0.005)
        state.cache_put(entry("kept", "h: assistants"), keep_for=3600)
        indexed = state.client.zrange("aigw:tag:h: assistants", 0, -1)
        kept_for_ms = state.client.pttl("aigw:tag:h: assistants")
    finally:
        state.close()
    assert indexed == [b"aigw:cache:kept"]
    assert 0 < kept_for_ms <= 3_600_000


def test_admit_takes_every_buckets_slot_or_none_and_reads_the_cache_in_the_same_call(
    async_state: Callable[[], AsyncSharedState],
) -> None:
    stored = entry("k1", "h: assistants", body=bytes(range(256)))
    one_per_minute = Gcra(interval=60.0, tolerance=0.0)
    both = [("key", TWO_PER_SECOND), ("all", one_per_minute)]

    async def scenario() -> list[Admission]:
        state = async_state()
        await state.cache_put(stored, keep_for=3600)
        answers = [await state.admit(both, NOW, "k1")]
        answers.append(await state.admit([("key", TWO_PER_SECOND)], NOW, "k2"))  # a miss
        answers.append(await state.admit(both, NOW, "k1"))  # "key" is full: refused by it
        # "all" is full: refused by it (index 1), and "key"'s slot is not taken ...
        answers.append(await state.admit(both, NOW + 1, None))
        # ... so both slots of "key"'s burst are free, then none
        answers += [await state.admit([("key", TWO_PER_SECOND)], NOW + 1, None) for _ in "abc"]
        answers.append(await state.admit([], NOW, "k1"))  # no bucket: a read
        await state.close()
        return answers

    answers = asyncio.run(scenario())
    assert answers == [
        Admission(entry=stored),
        Admission(),
        Admission(pytest.approx(0.5), 0),
        Admission(pytest.approx(59.0), 1),
        Admission(),
        Admission(),
        Admission(pytest.approx(0.5), 0),
        Admission(entry=stored),
    ]
