"""What the Assistants bridge costs over calling the model's Chat Completions API directly.

Three processes, so client, bridge and model do not share one interpreter: the sandbox (the
model: /v1/chat/completions, no added delay), the bridge over it (aigw/bridge/), and this
client. Measured side by side in one run:

1. Latency, streamed, N rounds alternating the two paths (same load on both):
   - direct: POST /chat/completions {"stream": true} on the sandbox; time to the first
     content chunk and to `[DONE]`;
   - bridge: POST /threads/{id}/runs {"stream": true} on the bridge (a new thread with one
     message, made beforehand and not timed); time to the first `thread.message.delta` and
     to `done` (the run completed and stored).
   Printed: p50 and p95 of each, and the time the bridge adds (bridge − direct, per round).
2. Throughput: 16 concurrent clients, each streaming create-thread-and-run until `done`, for
   D seconds; complete runs per second, with the store in SQLite and in Postgres (a
   throw-away database on the local server). The direct path's chat completions per second
   with 16 clients are the ceiling the model sets.

The machine is shared (2 cores, other work running): the load average is printed with the
figures. Run: python -m bench.bridge [ROUNDS] [SECONDS]   (default 200 rounds, 10 s)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

PG_ADMIN_URL = os.environ.get("AIGW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
HEADERS = {"authorization": "Bearer sk-bench", "x-vercel-ai-gateway-key": "gk-bench"}
TEXT = "Tell me about the weather in Paris today, briefly please."


def serve(kind: str, *args: str) -> None:
    """The child process: a sandbox or a bridge, its URL on the first stdout line."""
    if kind == "sandbox":
        from aigw.sandbox import Sandbox

        sandbox = Sandbox().bind()
        print(sandbox.url, flush=True)
        sandbox.serve_forever()
    else:
        from aigw.bridge.serve import BridgeServer

        database, model_url = args
        server = BridgeServer(database, model_url, "sk-bench").start()
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        finally:
            server.stop()


@contextmanager
def child(kind: str, *args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bridge", "--serve", kind, *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit(f"the {kind} did not start")
        yield url
    finally:
        process.terminate()
        process.wait(30)


async def timed_stream(
    session: aiohttp.ClientSession, url: str, body: dict[str, object], first: bytes, last: bytes
) -> tuple[float, float]:
    """Seconds to the first event line containing `first`, and to the line containing `last`."""
    started = time.perf_counter()
    to_first = None
    async with session.post(url, json=body, headers=HEADERS) as response:
        response.raise_for_status()
        async for line in response.content:
            if to_first is None and first in line:
                to_first = time.perf_counter() - started
            if last in line:
                break
    total = time.perf_counter() - started
    assert to_first is not None, f"no {first!r} in the stream of {url}"
    return to_first, total


async def new_thread(session: aiohttp.ClientSession, bridge: str) -> str:
    body = {"messages": [{"role": "user", "content": TEXT}]}
    async with session.post(f"{bridge}/threads", json=body, headers=HEADERS) as response:
        return str((await response.json())["id"])


async def latency(model: str, bridge: str, rounds: int) -> dict[str, list[float]]:
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": TEXT}], "stream": True}
    results: dict[str, list[float]] = {k: [] for k in ("d_first", "d_total", "b_first", "b_total")}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{bridge}/assistants", json={"model": "gpt-4o-mini"}, headers=HEADERS
        ) as response:
            assistant = (await response.json())["id"]
        for i in range(rounds + 10):  # the first 10 warm both paths up
            thread = await new_thread(session, bridge)
            direct = await timed_stream(
                session, f"{model}/chat/completions", chat, b'"content": "You', b"[DONE]"
            )
            via = await timed_stream(
                session,
                f"{bridge}/threads/{thread}/runs",
                {"assistant_id": assistant, "stream": True},
                b"thread.message.delta",
                b"event: done",
            )
            if i >= 10:
                results["d_first"].append(direct[0])
                results["d_total"].append(direct[1])
                results["b_first"].append(via[0])
                results["b_total"].append(via[1])
    return results


async def throughput(base: str, seconds: float, *, bridge: bool, clients: int = 16) -> float:
    """Complete runs (bridge) or chat completions (direct) per second with `clients` at once."""
    done = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        assistant = ""
        if bridge:
            async with session.post(
                f"{base}/assistants", json={"model": "gpt-4o-mini"}, headers=HEADERS
            ) as response:
                assistant = (await response.json())["id"]

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                if bridge:
                    body = {
                        "assistant_id": assistant,
                        "thread": {"messages": [{"role": "user", "content": TEXT}]},
                        "stream": True,
                    }
                    await timed_stream(
                        session,
                        f"{base}/threads/runs",
                        body,
                        b"thread.run.completed",
                        b"event: done",
                    )
                else:
                    body = {
                        "model": "m",
                        "messages": [{"role": "user", "content": TEXT}],
                        "stream": True,
                    }
                    await timed_stream(
                        session, f"{base}/chat/completions", body, b"content", b"[DONE]"
                    )
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return done / (time.perf_counter() - started)


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def throwaway_database() -> Iterator[str]:
    import psycopg

    from aigw.storage.migrations import apply

    name = f"aigw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rpartition("/")[0] + "/" + name
    try:
        apply(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, child("sandbox") as model:
        with child("bridge", str(Path(tmp) / "bridge.db"), model) as bridge:
            lat = asyncio.run(latency(model, bridge, rounds))
            sqlite_rps = asyncio.run(throughput(bridge, seconds, bridge=True))
        direct_rps = asyncio.run(throughput(model, seconds, bridge=False))
        with throwaway_database() as pg, child("bridge", pg, model) as bridge:
            pg_rps = asyncio.run(throughput(bridge, seconds, bridge=True))
    load_after = os.getloadavg()

    added_first = [b - d for b, d in zip(lat["b_first"], lat["d_first"], strict=True)]
    added_total = [b - d for b, d in zip(lat["b_total"], lat["d_total"], strict=True)]
    print("bench.bridge: the Assistants bridge over a Chat Completions model (the sandbox)")
    print(
        "method: three processes on this machine (model, bridge, client); latency: "
        f"{rounds} rounds alternating direct chat and bridge run, both streamed, each run on "
        f"a fresh thread; throughput: 16 concurrent clients, {seconds:g} s per store, each "
        "streaming create-thread-and-run until `done` (the run completed and stored)"
    )
    print(f"\n{'latency':30}{'p50 ms':>9}{'p95 ms':>9}{'target':>12}")
    for label, values, target in [
        ("direct: first token", lat["d_first"], ""),
        ("bridge: first token", lat["b_first"], ""),
        ("added to first token", added_first, "<= 5 (p50)"),
        ("direct: total", lat["d_total"], ""),
        ("bridge: total (run stored)", lat["b_total"], ""),
        ("added to total", added_total, ""),
    ]:
        print(f"{label:30}{ms(values, 0.5):9.2f}{ms(values, 0.95):9.2f}{target:>12}".rstrip())
    print(f"\n{'throughput, 16 clients':30}{'per s':>9}{'':9}{'target':>12}")
    for label, rate, target in [
        ("bridge runs, SQLite store", sqlite_rps, ">= 200"),
        ("bridge runs, Postgres store", pg_rps, ""),
        ("direct chats (model ceiling)", direct_rps, ""),
    ]:
        print(f"{label:30}{rate:9.1f}{'':9}{target:>12}".rstrip())
    print(
        f"\nmachine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (shared with other work); median added to first token "
        f"{statistics.median(added_first) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(sys.argv[2], *sys.argv[3:])
    else:
        main()
