"""Benchmarks of the call log (issue "Every call logged"); prints figures and ratios.

1. per-call overhead of LoggingTransport: 1,000 `assistants.retrieve` calls through the real
   SDK to a sandbox (in its own process), with and without the layer, three times over
   (target ratio ≤ 1.05);
2. local write rate: records through the outbox as the layer writes them (appended to the
   process's journal, then imported into SQLite; both timed), and straight into SQLite one
   transaction per record and batched, for comparison (target ≥ 20,000 records/s);
3. sync rate from the outbox into the real Postgres (target ≥ 20,000 rows/s).

Run from the repository root: python -m bench.logging [--calls 1000] [--rows 100000]
(run as a script, this file's folder would come first on sys.path and this file would shadow
the standard library's `logging`; the lines below guard against that too). The load average
is printed first and last: on a shared machine, repeat and compare medians.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `logging`: run as a script, its folder would
# shadow it for every library that logs. Swap the folder for the repository root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

SANDBOX = (
    "from aigw.sandbox import Sandbox; import sys, time\n"
    "s = Sandbox().start(); print(s.url, flush=True)\n"
    "sys.stdin.read()\n"
)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def per_call_overhead(calls: int, home: Path) -> None:
    import openai

    from aigw.gateway.http import HTTPTransport
    from aigw.gateway.transports.logging import LoggingTransport
    from aigw.storage.outbox import Outbox
    from aigw.storage.sqlite import SQLiteRepository

    server = subprocess.Popen(
        [sys.executable, "-c", SANDBOX], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    store = SQLiteRepository(home / "aigw.sqlite3")
    outbox = Outbox(lambda: store, home / "journal")

    # Every client goes through the same connection pool, so each side's calls take the same
    # keep-alive connection to the same server thread: only the layer differs. A second plain
    # client is the control: plain against plain shows how far apart two identical sides land
    # on this machine (the figures' resolution).
    network = HTTPTransport()

    def client(logged: bool) -> openai.OpenAI:
        transport = LoggingTransport(network, outbox, route="gateway") if logged else network
        http = openai.DefaultHttpx2Client(transport=transport, timeout=30)
        return openai.OpenAI(api_key="sk-bench", base_url=url, http_client=http, max_retries=0)

    sides = {"plain": client(False), "control": client(False), "logged": client(True)}
    assistant = sides["plain"].beta.assistants.create(model="gpt-4o", name="bench")
    for c in sides.values():  # warm up connections and code paths
        for _ in range(50):
            c.beta.assistants.retrieve(assistant.id)

    # Interleaved short rounds: drift on a shared machine hits every side alike. Rows move
    # into SQLite as they do in use, on the outbox's mover thread about once a second (its
    # work competes with the calls for the GIL and the cores, inside the timings); what is
    # left at the end is moved by a timed commit counted on the logged side. Three passes of
    # `calls` calls each, to show the spread.
    rounds = 100  # of 10 calls: fine-grained, so a slow spell of the machine falls on every side
    per_round = calls // rounds
    n = per_round * rounds
    ratios, controls = [], []
    for attempt in range(3):
        times = dict.fromkeys(sides, 0.0)
        for i in range(rounds):  # the turn order alternates: no side always goes first
            for name in list(sides) if i % 2 else list(sides)[::-1]:
                c = sides[name]
                started = time.perf_counter()
                for _ in range(per_round):
                    c.beta.assistants.retrieve(assistant.id)
                times[name] += time.perf_counter() - started
        started = time.perf_counter()
        outbox.commit()
        times["logged"] += time.perf_counter() - started
        base = times["plain"]
        ratios.append(times["logged"] / base)
        controls.append(times["control"] / base)
        print(f"1.{attempt + 1} per-call overhead ({n} calls each, sandbox in another process)")
        print(f"   without logging: {base / n * 1e6:8.1f} µs/call")
        print(f"   with logging:    {times['logged'] / n * 1e6:8.1f} µs/call")
        print(f"   added:           {(times['logged'] - base) / n * 1e6:8.1f} µs/call")
        print(f"   ratio:           {ratios[-1]:.3f} (target ≤ 1.05)")
        print(f"   control (plain again / plain): {controls[-1]:.3f}")
    print(f"   median of the three ratios: {statistics.median(ratios):.3f} (target ≤ 1.05)")
    spread = max(abs(c - 1) for c in controls)
    print(f"   controls within ±{spread:.3f} of 1: the resolution of these figures here")
    assert outbox.written >= calls and not outbox.unwritten
    outbox.close()
    server.stdin.close()  # type: ignore[union-attr]
    server.wait()
    store.close()


def local_write_rate(home: Path, count: int) -> None:
    from aigw.storage.outbox import Outbox
    from aigw.storage.sqlite import SQLiteRepository
    from tests.helpers.rows import attempts, records

    store = SQLiteRepository(home / "writes.sqlite3")
    facts = attempts(count)  # what a logged call hands the outbox
    outbox = Outbox(lambda: store, home / "journal")
    started = time.perf_counter()
    for attempt in facts:
        outbox(attempt)
    appended = time.perf_counter() - started
    outbox.close()  # rows made from the facts and put into SQLite, in short transactions
    through_outbox = count / (time.perf_counter() - started)
    assert outbox.written == count and not outbox.left_in_journal

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
    print(
        f"   as a call logs (journal + import into SQLite): {through_outbox:10,.0f} records/s"
        " (target ≥ 20,000)"
    )
    print(f"     of which the journal append a call waits for: {appended / count * 1e6:.1f} µs")
    print(f"   SQLite, one transaction per record:             {one_by_one:10,.0f} records/s")
    print(f"   SQLite, 1,000 per transaction:                  {batched:10,.0f} records/s")


def sync_rate(home: Path, count: int) -> None:
    import psycopg

    from aigw.services.sync import sync_logs
    from aigw.storage.migrations import apply_all
    from aigw.storage.postgres import PostgresRepository
    from aigw.storage.sqlite import SQLiteRepository
    from tests.helpers.rows import records

    name = f"aigw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        apply_all(url)
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
        print(f"   {count / seconds:10,.0f} rows/s end to end, outbox reads and marks included")
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
        per_call_overhead(args.calls, home)
        local_write_rate(home, 20_000)
        sync_rate(home, args.rows)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
