"""Benchmarks of the call log; prints figures.

1. the logging layer's own cost per call, in process: 1,000 `assistants.retrieve` calls through
   the real SDK to a sandbox in its own process; around each call the layer's time (wall and
   this thread's CPU) minus the time spent in the layer below it (the network), so what is
   left is the layer's work, the row's SQLite commit included. Medians (target ≤ 100 µs),
   side by side with the same layer keeping its rows in memory; then the commit alone, in a
   tight loop and right after each of as many calls made without the layer;
2. local write rate: one transaction per record, as each call writes, and 1,000 per
   transaction (as a batching writer would);
3. sync rate from the local store into the real Postgres (target ≥ 20,000 rows/s).

Run from the repository root: python -m bench.log_path [--calls 1000] [--rows 100000]
The load average is printed first and last: on a shared machine, repeat and compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SANDBOX = (
    "from aigw.sandbox import Sandbox; import sys, time\n"
    "s = Sandbox().start(); print(s.url, flush=True)\n"
    "sys.stdin.read()\n"
)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


class Timed:
    """A transport wrapper that adds up the time (wall, thread CPU) spent inside `inner`,
    the response body's arrival included."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.wall_ns = self.cpu_ns = 0

    def handle_request(self, request: Any) -> Any:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        try:
            response = self.inner.handle_request(request)
            response.read()  # receiving the body is the network's work, whoever asks for it
            return response
        finally:
            self.wall_ns += time.perf_counter_ns() - wall
            self.cpu_ns += time.thread_time_ns() - cpu

    def close(self) -> None:
        self.inner.close()


class LayerClock:
    """Around the logging layer: each call's time in it, less the time in the layer below."""

    def __init__(self, layer: Any, below: Timed):
        self.layer, self.below = layer, below
        self.wall_us: list[float] = []
        self.cpu_us: list[float] = []

    def handle_request(self, request: Any) -> Any:
        below_wall, below_cpu = self.below.wall_ns, self.below.cpu_ns
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        response = self.layer.handle_request(request)
        wall = time.perf_counter_ns() - wall - (self.below.wall_ns - below_wall)
        cpu = time.thread_time_ns() - cpu - (self.below.cpu_ns - below_cpu)
        self.wall_us.append(wall / 1000)
        self.cpu_us.append(cpu / 1000)
        return response

    def close(self) -> None:
        self.layer.close()


def layer_cost(calls: int, home: Path) -> None:
    """The layer writing each row to the store, and the same layer keeping its rows in a list
    (its own work without the commit), interleaved; then the commit alone, for the split."""
    import openai

    from aigw.gateway.http import HTTPTransport
    from aigw.gateway.transports.logging import LoggingTransport
    from aigw.storage.call_log import CallLog
    from aigw.storage.sqlite import SQLiteRepository
    from tests.helpers.rows import records

    server = subprocess.Popen(
        [sys.executable, "-c", SANDBOX], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    store = SQLiteRepository(home / "aigw.sqlite3")
    log = CallLog(lambda: store)
    kept: list[Any] = []
    clients = {}
    for label, sink in (("committed", log), ("in memory", kept.append)):
        below = Timed(HTTPTransport())
        clock = LayerClock(LoggingTransport(below, sink, route="gateway"), below)
        http = openai.DefaultHttpx2Client(transport=clock, timeout=30)  # type: ignore[arg-type]
        client = openai.OpenAI(api_key="sk-bench", base_url=url, http_client=http, max_retries=0)
        clients[label] = (client, clock)
    first = clients["committed"][0]
    assistant = first.beta.assistants.create(model="gpt-4o", name="bench")
    for client, _ in clients.values():
        for _ in range(50):  # warm up the connection and the code paths
            client.beta.assistants.retrieve(assistant.id)
    for attempt in range(3):
        print(
            f"1.{attempt + 1} the logging layer's cost per call ({calls} calls each, alternating)"
        )
        for _, clock in clients.values():
            clock.wall_us.clear()
            clock.cpu_us.clear()
        for _ in range(calls):
            for client, _ in clients.values():
                client.beta.assistants.retrieve(assistant.id)
        for label, (_, clock) in clients.items():
            wall, cpu = clock.wall_us, clock.cpu_us
            print(
                f"   {label:9} wall median {statistics.median(wall):6.1f} µs "
                f"(p90 {statistics.quantiles(wall, n=10)[-1]:6.1f}), "
                f"CPU median {statistics.median(cpu):6.1f} µs "
                f"(p90 {statistics.quantiles(cpu, n=10)[-1]:6.1f})"
            )
    print("   target: committed median ≤ 100 µs")
    assert not log.unwritten and store.pending_count() == 3 * calls + 51
    # The same commit in a tight loop, and right after a call made without the layer: the
    # difference is the CPU's caches, which the SDK and the network round trip leave cold.
    plain = openai.OpenAI(
        api_key="sk-bench",
        base_url=url,
        http_client=openai.DefaultHttpx2Client(transport=HTTPTransport(), timeout=30),
        max_retries=0,
    )
    for label, between in (
        ("in a tight loop", None),
        ("after a call without the layer", lambda: plain.beta.assistants.retrieve(assistant.id)),
    ):
        wall_us, cpu_us = [], []
        for record in records(calls):
            if between is not None:
                between()
            wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
            store.write([record])
            wall_us.append((time.perf_counter_ns() - wall) / 1000)
            cpu_us.append((time.thread_time_ns() - cpu) / 1000)
        print(
            f"   one row's commit alone (Repository.write) {label}: wall median "
            f"{statistics.median(wall_us):6.1f} µs, CPU median {statistics.median(cpu_us):6.1f} µs"
        )
    for client in (plain, *(client for client, _ in clients.values())):
        client.close()
    server.stdin.close()  # type: ignore[union-attr]
    server.wait()
    store.close()


def local_write_rate(home: Path, count: int) -> None:
    from aigw.storage.sqlite import SQLiteRepository
    from tests.helpers.rows import records

    store = SQLiteRepository(home / "writes.sqlite3")
    batch = records(count)
    started = time.perf_counter()
    for record in batch:
        store.write([record])
    one_by_one = count / (time.perf_counter() - started)

    batch = records(count)
    started = time.perf_counter()
    for start in range(0, count, 1000):
        store.write(batch[start : start + 1000])
    batched = count / (time.perf_counter() - started)
    store.close()
    print(f"2. local write rate ({count} records, WAL, synchronous=NORMAL)")
    print(f"   one transaction per record (each call): {one_by_one:10,.0f} records/s")
    print(f"   1,000 per transaction (a batch writer): {batched:10,.0f} records/s")


def sync_rate(home: Path, count: int) -> None:
    import psycopg

    from aigw.services.sync import sync_logs
    from aigw.storage.migrations import apply
    from aigw.storage.postgres import PostgresRepository
    from aigw.storage.sqlite import SQLiteRepository
    from tests.helpers.rows import records

    name = f"aigw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        apply(url)
        local = SQLiteRepository(home / "sync.sqlite3")
        for start in range(0, count, 10_000):
            local.write(records(min(10_000, count - start)))
        remote = PostgresRepository(url)
        started = time.perf_counter()
        report = sync_logs(local, remote, batch_size=5000)
        seconds = time.perf_counter() - started
        assert report.synced == count and report.pending == 0, report
        remote.close()
        local.close()
        print(f"3. sync rate into the real Postgres ({count} rows, batches of 5,000, COPY)")
        print(f"   {count / seconds:10,.0f} rows/s end to end, local reads and cursor included")
        print("   (target ≥ 20,000)")
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        layer_cost(args.calls, home)
        local_write_rate(home, 20_000)
        sync_rate(home, args.rows)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
