"""The fall-back over the shared state (aigw/storage/failover.py): a write's cache drops that
an outage held back reach the shared state before anything else does, and are never lost.
The shared side is a real SQLite state that can be made not to answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from aigw.common.state import Admission, CacheEntry, Gcra
from aigw.storage.failover import AsyncFailoverState, FailoverState, Health, StateUnavailable
from aigw.storage.state import SQLiteState

ENTRY = CacheEntry("k1", "h: assistants", "/v1/assistants", 1.0, 200, [], b"[]")


class Unreachable:
    """A state that answers like `inner` until `down` is set, then raises ConnectionError;
    `drops_fail` cache drops fail even while it answers the rest."""

    def __init__(self, inner: SQLiteState):
        self.inner = inner
        self.down = False
        self.drops_fail = 0
        self.drops: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down and name != "close":
                raise ConnectionError("Redis is not there")
            if name == "cache_drop":
                if self.drops_fail:
                    self.drops_fail -= 1
                    raise ConnectionError("Redis went away again")
                self.drops.append(args[0])
            return method(*args, **kwargs)

        return call


class AsyncUnreachable:
    """`Unreachable` behind the async interface."""

    def __init__(self, sync: Unreachable):
        self.sync = sync

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(self.sync, name)(*args, **kwargs)

        return call


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def failover(tmp_path: Path, warnings: list[str]) -> tuple[FailoverState, Unreachable, Clock]:
    shared = Unreachable(SQLiteState(tmp_path / "shared.sqlite3"))
    clock = Clock()
    health = Health("redis://****@x:1/0", warnings.append, fail_closed=False, clock=clock)
    local = SQLiteState(tmp_path / "local.sqlite3")
    return FailoverState(shared, local, health, (ConnectionError,)), shared, clock  # type: ignore[arg-type]


def a_write_during_an_outage(state: FailoverState, shared: Unreachable, clock: Clock) -> None:
    state.cache_put(ENTRY, keep_for=60)
    shared.down = True
    assert state.cache_drop([ENTRY.tag]) == 0  # held
    clock.now += 2  # past the next try


def test_the_first_read_after_an_outage_is_a_miss_and_comes_after_the_held_drop(
    tmp_path: Path,
) -> None:
    state, shared, clock = failover(tmp_path, [])
    a_write_during_an_outage(state, shared, clock)
    shared.down = False
    assert state.cache_get(ENTRY.key) is None
    assert shared.inner.cache_get(ENTRY.key) is None  # the held drop went first
    assert state.mode == "shared"


def test_a_held_drop_that_fails_again_is_held_until_it_is_sent(tmp_path: Path) -> None:
    state, shared, clock = failover(tmp_path, [])
    a_write_during_an_outage(state, shared, clock)
    shared.down, shared.drops_fail = False, 1
    state.breaker_get("h")  # Redis answers, but not the held drop
    clock.now += 2
    state.breaker_get("h")
    assert shared.drops == [[ENTRY.tag]]
    assert shared.inner.cache_get(ENTRY.key) is None


def test_a_command_that_wrote_during_an_outage_sends_the_drop_when_it_closes(
    tmp_path: Path,
) -> None:
    state, shared, clock = failover(tmp_path, [])
    a_write_during_an_outage(state, shared, clock)
    shared.down = False
    state.close()
    left = SQLiteState(tmp_path / "shared.sqlite3")
    try:
        assert left.cache_get(ENTRY.key) is None
    finally:
        left.close()


def test_a_drop_that_cannot_be_sent_at_close_is_a_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    state, shared, clock = failover(tmp_path, warnings)
    a_write_during_an_outage(state, shared, clock)
    state.close()
    assert warnings[-1].startswith("warning: 1 cache invalidation(s) could not be sent")


def test_the_server_side_holds_and_sends_drops_the_same_way(tmp_path: Path) -> None:
    sync, shared, clock = failover(tmp_path, [])
    state = AsyncFailoverState(
        AsyncUnreachable(shared),  # type: ignore[arg-type]
        sync.local,  # type: ignore[arg-type]
        sync.health,
        (ConnectionError,),
    )

    async def scenario() -> tuple[Any, Any]:
        await state.cache_put(ENTRY, keep_for=60)
        shared.down = True
        await state.cache_drop([ENTRY.tag])
        clock.now += 2
        await state.breaker_get("h")  # still down
        clock.now += 2
        shared.down = False
        return (await state.admit([], 0.0, ENTRY.key)).entry, shared.inner.cache_get(ENTRY.key)

    read, stored = asyncio.run(scenario())
    assert read is None and stored is None
    assert shared.drops == [[ENTRY.tag]]
    asyncio.run(state.close())
    sync.local.close()


def test_a_slot_and_a_cache_read_in_one_call_fall_back_as_the_two_calls_do(
    tmp_path: Path,
) -> None:
    sync, shared, clock = failover(tmp_path, [])
    state = AsyncFailoverState(
        AsyncUnreachable(shared),  # type: ignore[arg-type]
        sync.local,  # type: ignore[arg-type]
        sync.health,
        (ConnectionError,),
    )
    one_per_minute = Gcra(interval=60.0, tolerance=0.0)

    async def scenario() -> list[Admission]:
        await state.cache_put(ENTRY, keep_for=60)
        answers = [await state.admit([("b", one_per_minute)], 0.0, ENTRY.key)]
        shared.down = True  # the local bucket decides, the cache is skipped
        answers.append(await state.admit([("b", one_per_minute)], 0.0, ENTRY.key))
        answers.append(await state.admit([("b", one_per_minute)], 0.0, ENTRY.key))
        clock.now += 2
        shared.down = False  # the read that ends the outage is a miss, the next one a hit
        answers.append(await state.admit([("other", one_per_minute)], 0.0, ENTRY.key))
        answers.append(await state.admit([("more", one_per_minute)], 0.0, ENTRY.key))
        return answers

    answers = asyncio.run(scenario())
    assert answers == [
        Admission(entry=ENTRY),
        Admission(),
        Admission(60.0, 0),
        Admission(),
        Admission(entry=ENTRY),
    ]
    sync.health.fail_closed = True
    shared.down = True
    clock.now += 2
    with pytest.raises(StateUnavailable):
        asyncio.run(state.admit([("b", one_per_minute)], 0.0, ENTRY.key))
    # with no rate limit to decide, a cache read that cannot be made is only a miss
    clock.now += 2
    assert asyncio.run(state.admit([], 0.0, ENTRY.key)) == Admission()
    asyncio.run(state.close())
    sync.local.close()


@pytest.fixture(autouse=True)
def _no_env(isolated_env: Path) -> None:
    """The states live in tmp_path; AIGW_HOME is isolated all the same."""
