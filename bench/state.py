"""Benchmark: the shared state in Redis against the SQLite state, side by side in one run.

1. The added cost per request: the state calls a request makes before it goes upstream — the
   rate-limit decisions (a GCRA slot per gateway key and one for the gateway) and the cache
   lookup, in one call as the server makes them (`admit`: one round trip to Redis) — through
   the server's async state, SQLite (`AsyncLocal`) and Redis on loopback
   (`AsyncFailoverState` over `AsyncRedisState`, as `aigw gateway serve` builds it), in
   interleaved rounds; p50 and p99 per request, and the
   p50 Redis adds.
2. Scaling out: `aigw gateway serve` (one worker) in front of a static upstream, every policy
   on, the state in Redis — one instance loaded by wrk, then two instances loaded at once by
   one wrk each (the same connections in total), interleaved rounds; combined req/s and the
   ratio. One instance on the SQLite state is loaded too, and for both single instances the
   gateway's CPU time per request (from /proc) is printed: the figure a shared machine
   disturbs least. The machine's load average and CPU use are printed with the figures.

Run from the repository root: `python -m bench.state [--quick] [--rounds N]`.
Needs redis-server and wrk (Debian: apt-get install redis-server wrk). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from aigw.common.state import AsyncSharedState, CacheEntry
from aigw.gateway.policies.ratelimit import gcra_of
from aigw.settings import Settings
from aigw.storage import open_async_state
from aigw.storage.state import SQLiteState
from bench.gateway import (
    GATEWAY_KEY,
    WRK_SCRIPT,
    Sample,
    Server,
    _start,
    _stop,
    load,
)
from tests.helpers.redis import RedisServer, redis_server_path

ENDPOINT = "GET /v1/assistants?limit=20"


async def _per_request(state: AsyncSharedState, count: int) -> list[float]:
    """Seconds per request for the pre-upstream state work as the server does it: the key's and
    the gateway's rate-limit slots and a cache read (a hit: the entry exists), in one call."""
    rule = gcra_of("1000000/s")
    entry = CacheEntry("k", "h: assistants", "/v1/assistants", time.time(), 200, [], b"{}" * 200)
    await state.cache_put(entry, keep_for=3600)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await state.admit([("bench:key", rule), ("bench", rule)], time.time(), "k")
        times.append(time.perf_counter() - started)
    return times


def state_cost(redis_url: str, home: Path, rounds: int, count: int) -> None:
    sqlite_times: list[float] = []
    redis_times: list[float] = []

    async def run() -> None:
        local = SQLiteState(Settings(home=home / "sqlite").state_db_path)
        via_sqlite = open_async_state(Settings(home=home / "sqlite"), local, warn=print)
        shared_local = SQLiteState(Settings(home=home / "redis").state_db_path)
        settings = Settings(home=home / "redis", state_url=redis_url, state_timeout=1.0)
        via_redis = open_async_state(settings, shared_local, warn=print)
        await _per_request(via_redis, 200)  # warm: connections, scripts loaded
        await _per_request(via_sqlite, 200)
        for _ in range(rounds):
            sqlite_times.extend(await _per_request(via_sqlite, count))
            redis_times.extend(await _per_request(via_redis, count))
        await via_redis.close()
        local.close()
        shared_local.close()

    asyncio.run(run())
    rows = {"sqlite": _ms(sqlite_times), "redis": _ms(redis_times)}
    count = len(redis_times)
    print(f"\n1. state calls per request (both rate limits + cache lookup), {count} each")
    print(f"{'state':8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (p50, p99) in rows.items():
        print(f"{name:8} {p50:8.3f} {p99:8.3f}")
    added = rows["redis"][0] - rows["sqlite"][0]
    added99 = rows["redis"][1] - rows["sqlite"][1]
    print(f"added by Redis: p50 {added:+.3f} ms, p99 {added99:+.3f} ms  (target ≤ 0.3 ms p50)")


def _ms(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return (
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


def _gateway(name: str, upstream: str, home: Path, redis_url: str | None) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGW_", "GATEWAY_"))}
    env |= {
        "AIGW_HOME": str(home / name),
        "GATEWAY_API_KEY": GATEWAY_KEY,
        # every policy on: both limits are decided, never hit
        "AIGW_RATE_LIMIT": "1000000/s",
        "AIGW_KEY_RATE_LIMIT": "1000000/s",
    }
    if redis_url is not None:
        env["AIGW_STATE_URL"] = redis_url
    command = [sys.executable, "-m", "aigw", "gateway", "serve", "--port", "0"]
    return _start(name, [*command, "--upstream", upstream], env)


def _together(servers: list[Server], connections: int, seconds: int, script: Path) -> list[Sample]:
    """One wrk per server, all at once."""
    found: list[Sample] = []

    def one(server: Server) -> None:
        found.append(load(server, None, ENDPOINT, connections, seconds, script))

    threads = [threading.Thread(target=one, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def scale_out(redis_url: str, home: Path, rounds: int, seconds: int, connections: int) -> None:
    script = home / "bench.lua"
    script.write_text(WRK_SCRIPT)
    here = [sys.executable, "-m", "bench.gateway_servers"]
    upstream = _start("static", [*here, "static", "0"])
    a = _gateway("a", upstream.url, home, redis_url)
    b = _gateway("b", upstream.url, home, redis_url)
    local = _gateway("local", upstream.url, home, None)
    one_local: list[Sample] = []
    one: list[Sample] = []
    two: list[float] = []
    busy: list[float] = []
    try:
        for server in (a, b, local):
            load(server, None, ENDPOINT, 4, 1, script)  # warm
        for _ in range(rounds):
            one_local.append(load(local, local, ENDPOINT, connections, seconds, script))
            one.append(load(a, a, ENDPOINT, connections, seconds, script))
            both = _together([a, b], connections // 2, seconds, script)
            two.append(sum(s.rps for s in both))
            busy.append(max(s.busy for s in both))
    finally:
        for server in (a, b, local, upstream):
            _stop(server)
    single, double = _median(one, "rps"), statistics.median(two)
    print(
        f"\n2. aigw gateway serve (1 worker each, state in Redis), static upstream, {ENDPOINT},"
        f" {connections} connections in total, median of {rounds} round(s) of {seconds} s"
    )
    for name, samples in (("SQLite", one_local), ("Redis", one)):
        cpu = _median(samples, "cpu_ms_per_request")
        print(
            f"one instance, {name} state: {_median(samples, 'rps'):8.0f} req/s, "
            f"gateway CPU {cpu:.3f} ms per request"
        )
    ratio = double / single
    print(f"two instances, Redis state: {double:8.0f} req/s ({ratio:.2f}× one; target ≥ 1.6×)")
    print(f"machine CPU use while two ran: {statistics.median(busy):.0%} of {os.cpu_count()} cores")


def _median(samples: list[Sample], name: str) -> float:
    return statistics.median(getattr(s, name) for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round, short")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    executable = redis_server_path()
    if executable is None:
        raise SystemExit("bench.state needs redis-server: apt-get install redis-server")
    rounds, seconds, count = (1, 2, 2000) if args.quick else (args.rounds, args.seconds, 5000)
    print(
        f"machine: {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start (shared machine)"
    )
    with tempfile.TemporaryDirectory() as temp:
        home = Path(temp)
        redis = RedisServer(home / "redis", executable).start()
        try:
            state_cost(redis.url, home, rounds, count)
            scale_out(redis.url, home, rounds, seconds, args.connections)
        finally:
            redis.stop()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
