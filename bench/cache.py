"""Benchmark: what the cache and the circuit breaker save. Prints ratios; asserts nothing.

0. The headline, as a user feels it: a whole `aigw assistants list` (a new process each time)
   against an upstream that answers in 50 ms (the sandbox with a `delay=50` fault), answered
   from the cache versus with --no-cache; medians of interleaved runs.
1. 1,000 `assistants list` calls in process to the sandbox, answered by the cache versus sent
   upstream (--no-cache). Target: a hit ≥ 10× faster. Measured three ways, all printed, each
   with every call's log row written to the local SQLite store as the CLI does, best of three
   interleaved runs:
   * transport stack: aigw's layers only, on GET /v1/assistants requests built beforehand —
     what the cache saves, the figure for the target;
   * the same, building each request in the loop (httpx2's URL parsing, the caller's cost);
   * whole SDK call: `client.beta.assistants.list()`, the SDK's own request building and
     response parsing included.
2. The wall time of a whole `aigw assistants list` invocation refused by the open breaker
   versus `python -c "import openai"` (medians of interleaved runs). Target ≤ 0.5: no
   network, no wait, no SDK import.

Run from the repository root: `python -m bench.cache`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aigw.common.state import BreakerRule
from aigw.gateway.circuit import host_of
from aigw.gateway.client import Gateway
from aigw.gateway.http import Request
from aigw.sandbox import Sandbox
from aigw.settings import Settings
from aigw.storage import open_state
from aigw.storage.call_log import CallLog
from aigw.storage.sqlite import SQLiteRepository
from aigw.storage.state import SQLiteState
from bench import compile_aigw

CALLS = 1_000


def time_sdk_calls(gateway: Gateway, calls: int) -> float:
    """`client.beta.assistants.list()`: the SDK's own work per call included."""
    client = gateway.client
    client.beta.assistants.list()  # warm: connection, SDK, and (when caching) the entry
    started = time.perf_counter()
    for _ in range(calls):
        client.beta.assistants.list()
    return time.perf_counter() - started


def time_stack_calls(gateway: Gateway, calls: int, *, build_requests: bool = False) -> float:
    """GET /v1/assistants through aigw's transport stack only: what the cache saves. The
    requests are built before the clock starts unless `build_requests` (httpx2 parses each
    URL again, ~60 µs here: the caller's cost, hit or not)."""
    headers = {"authorization": "Bearer sk-bench-000000000000", **gateway.headers()}
    url = f"{gateway.settings.base_url}/assistants"

    def request() -> Request:
        return Request("GET", url, headers=headers)

    def one(req: Request) -> None:
        response = gateway.transport.handle_request(req)
        response.read()
        response.close()

    one(request())
    ready = [] if build_requests else [request() for _ in range(calls)]
    started = time.perf_counter()
    for i in range(calls):
        one(request() if build_requests else ready[i])
    return time.perf_counter() - started


HOW = {
    "stack": "transport stack, log rows written",
    "stack+build": "transport stack, building each request too",
    "sdk": "whole SDK call, log rows written",
}


def cache_ratio(home: Path) -> dict[tuple[str, str], float]:
    sandbox = Sandbox().start()
    try:
        for i in range(5):  # a realistic page, not an empty one
            sandbox.state.assistants.add(
                {
                    "id": f"asst_{i:024d}",
                    "object": "assistant",
                    "created_at": 0,
                    "name": f"a{i}",
                    "description": None,
                    "model": "gpt-4o",
                    "instructions": "Be brief.",
                    "tools": [],
                    "tool_resources": {},
                    "metadata": {},
                    "temperature": 1.0,
                    "top_p": 1.0,
                    "response_format": "auto",
                }
            )
        settings = Settings(
            home=home,
            ai_gateway_url=sandbox.url,
            gateway_api_key="gk-bench",
            openai_api_key="sk-bench-000000000000",
        )
        timings = {}
        store = SQLiteRepository(settings.state_db_path)  # the CLI's local store, same file
        runs: list[tuple[str, Callable[[Gateway, int], float]]] = [
            ("stack", time_stack_calls),
            ("stack+build", lambda g, n: time_stack_calls(g, n, build_requests=True)),
            ("sdk", time_sdk_calls),
        ]
        for _ in range(3):  # interleaved; the best of three for each
            for label, options in (("hit", {}), ("upstream", {"no_cache": True})):
                for how, timer in runs:
                    log = CallLog(lambda: store)
                    gateway = Gateway(
                        settings, state=open_state(settings), options=options, log=log
                    )
                    try:
                        took = timer(gateway, CALLS)
                    finally:
                        gateway.close()
                    assert not log.unwritten
                    timings[label, how] = min(took, timings.get((label, how), took))
        store.close()
        return timings
    finally:
        sandbox.stop()


def walls(commands: list[list[str]], env: dict[str, str], runs: int = 9) -> list[float]:
    """Median wall time of each command; runs interleaved so a busy machine hurts all alike."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for i, argv in enumerate(commands):
            started = time.perf_counter()
            subprocess.run(argv, env=env, capture_output=True, check=False)
            times[i].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def refused_ratio(home: Path) -> tuple[float, float, int]:
    url = "http://127.0.0.1:9/v1"  # nothing listens there: a refused call must not notice
    store = SQLiteState(Settings(home=home).state_db_path)
    now = time.time()
    store.breaker_reset()
    # One failure with a rule that opens on one: open for an hour.
    store.breaker_record(
        host_of(url), now, BreakerRule(1, 3600, 60), failure=True, error="HTTP 503"
    )
    store.close()
    env = {
        **os.environ,
        "AIGW_HOME": str(home),
        "AI_GATEWAY_URL": url,
        "GATEWAY_API_KEY": "gk-bench",
        "OPENAI_API_KEY": "sk-bench-000000000000",
    }
    compile_aigw()
    check = subprocess.run(
        [sys.executable, "-m", "aigw", "assistants", "list"], env=env, capture_output=True
    )
    refused, sdk = walls(
        [
            [sys.executable, "-m", "aigw", "assistants", "list"],
            [sys.executable, "-c", "import openai"],
        ],
        env,
    )
    return refused, sdk, check.returncode


def command_ratio(home: Path, upstream_ms: int = 50) -> tuple[float, float]:
    """Median wall time of a whole `aigw assistants list`: from the cache, and upstream."""
    sandbox = Sandbox().start()
    try:
        sandbox.faults.add(f"GET /v1/assistants delay={upstream_ms}")
        env = {
            **os.environ,
            "AIGW_HOME": str(home),
            "AI_GATEWAY_URL": sandbox.url,
            "GATEWAY_API_KEY": "gk-bench",
            "OPENAI_API_KEY": "sk-bench-000000000000",
        }
        compile_aigw()
        aigw = [sys.executable, "-m", "aigw"]
        for i in range(5):  # a realistic page, not an empty one
            create = [*aigw, "assistants", "create", "--model", "gpt-4o", "--name", f"a{i}"]
            subprocess.run(create, env=env, capture_output=True, check=True)
        listing = [*aigw, "assistants", "list"]
        subprocess.run(listing, env=env, capture_output=True, check=True)  # fills the cache
        hit, upstream = walls([listing, [*listing, "--no-cache"]], env, runs=15)
        return hit, upstream
    finally:
        sandbox.stop()


def main() -> None:
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        hit, upstream = command_ratio(Path(tmp) / "command")
        print(
            f"a whole `aigw assistants list`, the upstream answering in 50 ms: from the cache "
            f"{hit * 1000:.0f} ms, upstream {upstream * 1000:.0f} ms → {upstream / hit:.2f}× "
            "(medians of 15 interleaved runs)"
        )
        timings = cache_ratio(Path(tmp) / "cache")
        for how, label in HOW.items():
            hit, upstream = timings["hit", how], timings["upstream", how]
            print(
                f"{CALLS} assistants list calls, {label}: hit {hit / CALLS * 1e6:.0f} µs/call, "
                f"upstream {upstream / CALLS * 1e6:.0f} µs/call → hit {upstream / hit:.1f}× "
                "faster (target ≥ 10×)"
            )
        refused, sdk, code = refused_ratio(Path(tmp) / "breaker")
        print(
            f"`aigw assistants list` refused by the open breaker (exit {code}): "
            f"{refused * 1000:.0f} ms; `python -c 'import openai'`: {sdk * 1000:.0f} ms"
        )
        print(f"  ratio: {refused / sdk:.2f} (target ≤ 0.5)")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
