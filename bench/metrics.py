"""`aigw metrics --since 24h --json` on the real Postgres, end to end, as two ratios.

1. against a minimal psycopg script running the seed's latency query (same DB, same window),
   with 1,000,000 rows over 30 days            (target ≤ 1.5);
2. the same aigw command with 10,000,000 rows against 1,000,000, the same 24 h window: the
   extra 9,000,000 rows are older history (the 270 days before), at the same rate per hour,
   so the window holds the same rows and only the table grows   (target ≤ 1.5).

Both sides are subprocesses (interpreter start, imports, connect, query, JSON out). The two
sizes are two throw-away databases (the 10M one starts as a copy of the 1M one), dropped at the
end; all four commands take turns in every round, and the figures are medians.

Run: python -m bench.metrics [runs] [--1m]   (from the repository root; AIGW_BENCH_PG_URL: admin
URL, default local `test`; --1m: the first ratio only, without the 10,000,000-row database)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg

from bench import compile_aigw
from tests.helpers.metrics import SEED_LATENCY_24H  # the seed's query, verbatim

ADMIN_URL = os.environ.get("AIGW_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# The minimal script the issue compares against: connect with psycopg, run the seed's query.
SEED_SCRIPT = f"""
import json, sys
import psycopg
conn = psycopg.connect(sys.argv[1])
rows = conn.execute({SEED_LATENCY_24H!r}).fetchall()
print(json.dumps([[e, float(a), t, s] for e, a, t, s in rows]))
"""

# Rows `first`..`last`, one every 30 days / 1,000,000 back from now (≈ 2.6 s apart), shaped
# like real traffic: five endpoints, 2/3 of calls with a call id, some retries, every status
# class, cache statuses, models and token usage on some.
GENERATE = """
INSERT INTO ai_gateway_logs (created_at, endpoint, method, status_code, latency_ms, call_id,
  attempt, route, cache_status, model, prompt_tokens, completion_tokens, assistant_id, source)
SELECT now() - i * interval '2.592 seconds',
  (ARRAY['/v1/assistants', '/v1/threads', '/v1/threads/{thread_id}/runs',
         '/v1/threads/{thread_id}/messages', '/v1/threads/{thread_id}/runs/{run_id}'])[1 + i %% 5],
  (ARRAY['GET', 'POST'])[1 + i %% 2],
  (ARRAY[200, 200, 200, 201, 200, 404, 429, 500, 200, NULL])[1 + i %% 10],
  (i * 7919) %% 3000,
  CASE WHEN i %% 3 = 0 THEN NULL ELSE md5((i / 2)::text)::uuid END,
  CASE WHEN i %% 3 = 0 THEN NULL ELSE 1 + i %% 2 END,
  'gateway',
  (ARRAY['hit', 'miss', NULL])[1 + i %% 3],
  (ARRAY['gpt-4o', 'gpt-4o-mini', NULL])[1 + i %% 3],
  CASE WHEN i %% 4 = 0 THEN 100 + i %% 500 END,
  CASE WHEN i %% 4 = 0 THEN 20 + i %% 300 END,
  (ARRAY['asst_a', 'asst_b', 'asst_c', NULL])[1 + i %% 4],
  'aigw'
FROM generate_series(%s::bigint, %s::bigint) i
"""


def with_database(url: str, name: str) -> str:
    return url.rpartition("/")[0] + "/" + name


def generate(url: str, first: int, last: int, chunk: int = 1_000_000) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(first, last + 1, chunk):
            conn.execute(GENERATE, (start, min(last, start + chunk - 1)))
            print(f"  … {min(last, start + chunk - 1):,} rows", file=sys.stderr, flush=True)
        conn.execute("VACUUM ANALYZE ai_gateway_logs")
    return time.perf_counter() - started


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=env["AIGW_HOME"], stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def samples_of(
    commands: dict[str, tuple[list[str], dict[str, str]]], runs: int
) -> dict[str, list[float]]:
    """Wall times of each (argv, env), the commands taking turns in every round."""
    for argv, env in commands.values():  # warm the file and buffer caches once
        timed(argv, env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, env) in commands.items():
            samples[name].append(timed(argv, env))
    return samples


def db_medians(url: str, runs: int) -> dict[str, float]:
    """The database side alone, on one warm connection: aigw's two calls vs the seed query."""
    seed_sql = SEED_LATENCY_24H
    aigw_sql = [
        "SELECT * FROM aigw_metrics(now() - interval '24 hours', now(), 'endpoint')",
        "SELECT * FROM aigw_metrics_usage(now() - interval '24 hours', now())",
    ]
    samples: dict[str, list[float]] = {"aigw": [], "seed": []}
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(runs + 1):
            started = time.perf_counter()
            with conn.transaction():
                conn.execute("SET LOCAL jit = off")
                conn.execute("SET LOCAL work_mem = '32MB'")
                for sql in aigw_sql:
                    conn.execute(sql).fetchall()
            middle = time.perf_counter()
            conn.execute(seed_sql).fetchall()
            if i:  # the first round warms the caches
                samples["aigw"].append(middle - started)
                samples["seed"].append(time.perf_counter() - middle)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    from aigw.storage.migrations import apply

    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    runs = int(numbers[0]) if numbers else 21
    with_big = "--1m" not in sys.argv[1:]
    compile_aigw()
    tag = uuid.uuid4().hex[:8]
    small_name, big_name = f"aigw_bench_1m_{tag}", f"aigw_bench_10m_{tag}"
    small_url, big_url = with_database(ADMIN_URL, small_name), with_database(ADMIN_URL, big_name)
    home = tempfile.mkdtemp(prefix="aigw-bench-home-")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGW_", "SUPABASE_"))}
    base_env.update({"AIGW_HOME": home, "NO_COLOR": "1"})
    aigw = [sys.executable, "-m", "aigw", "metrics", "--since", "24h", "--json"]

    def sides(url: str) -> tuple[tuple[list[str], dict[str, str]], ...]:
        env = {**base_env, "SUPABASE_DB_URL": url}
        return (aigw, env), ([sys.executable, "-c", SEED_SCRIPT, url], env)

    try:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{small_name}"')
        apply(small_url)
        print(f"generating 1,000,000 rows over 30 days in {small_name} …", file=sys.stderr)
        seconds = generate(small_url, 1, 1_000_000)
        print(f"  generated in {seconds:.0f} s", file=sys.stderr)
        if with_big:
            # The 10M database starts as a copy of the 1M one (the same newest rows, so the
            # same 24 h window), then gets 9,000,000 older rows.
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{big_name}" TEMPLATE "{small_name}"')
            print("generating 9,000,000 older rows (the 270 days before) …", file=sys.stderr)
            seconds = generate(big_url, 1_000_001, 10_000_000)
            print(f"  generated in {seconds:.0f} s", file=sys.stderr)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute("CHECKPOINT")  # the load's dirty pages written before the clock runs
        time.sleep(5)
        # Both sizes side by side: the four commands take turns in every round, so a slow
        # spell of the machine falls on all of them alike and every ratio is of one moment.
        aigw_small, seed_small = sides(small_url)
        commands = {"aigw 1M": aigw_small, "seed 1M": seed_small}
        if with_big:
            aigw_big, seed_big = sides(big_url)
            commands |= {"aigw 10M": aigw_big, "seed 10M": seed_big}
        timing = samples_of(commands, runs)
        median = {name: statistics.median(values) for name, values in timing.items()}
        best = {name: min(values) for name, values in timing.items()}
        small_db = db_medians(small_url, runs)
        big_db = db_medians(big_url, runs) if with_big else {}
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for name in (small_name, big_name):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"runs per figure: {runs}, the commands taking turns; medians (best runs in brackets)")
    print("end to end (subprocesses: interpreter, imports, connect, queries, JSON out):")

    def line(size: str, target: str) -> None:
        a, b = f"aigw {size}", f"seed {size}"
        print(
            f"  {size} rows: aigw metrics {median[a] * 1000:.0f} ms, seed query script "
            f"{median[b] * 1000:.0f} ms, ratio {median[a] / median[b]:.2f} "
            f"[{best[a] * 1000:.0f} vs {best[b] * 1000:.0f} ms, {best[a] / best[b]:.2f}]{target}"
        )

    line("1M", " (target ≤ 1.5)")
    if with_big:
        line("10M", "")
        print(
            "  aigw metrics 10M / 1M, same 24 h window: ratio "
            f"{median['aigw 10M'] / median['aigw 1M']:.2f} "
            f"[{best['aigw 10M'] / best['aigw 1M']:.2f}] (target ≤ 1.5)"
        )
    print("database side only (one warm connection; aigw = aigw_metrics + aigw_metrics_usage):")
    print(
        f"  1M rows:  aigw {small_db['aigw'] * 1000:.1f} ms, seed query "
        f"{small_db['seed'] * 1000:.1f} ms, ratio {small_db['aigw'] / small_db['seed']:.2f}"
    )
    if with_big:
        print(
            f"  10M rows: aigw {big_db['aigw'] * 1000:.1f} ms, seed query "
            f"{big_db['seed'] * 1000:.1f} ms; aigw 10M / 1M ratio "
            f"{big_db['aigw'] / small_db['aigw']:.2f}"
        )


if __name__ == "__main__":
    main()
