"""Benchmark: the gateway's own cost — the upstream directly vs through a gateway, side by side.

For each upstream (a trivial static server, so the gateway's cost shows; and aigw's sandbox),
each endpoint (`GET /v1/assistants?limit=20`, which aigw answers from its cache after the
first call; the same with `Cache-Control: no-cache`, which aigw sends upstream every time;
`POST /v1/threads`) and each concurrency (1, 16, 64), every target is loaded in turn with
`wrk` for a few seconds, in interleaved rounds:
  * direct: the upstream itself;
  * aigw: `aigw gateway serve` in front of it, every policy on (both rate limits, at
    1,000,000/s, so decided on each call and never hit), every call logged;
  * bare-aiohttp, bare-uvicorn (with --compare): pass-through proxies with no policy, the
    floor each HTTP stack sets (bench/gateway_servers.py);
  * aigw-base (with --baseline DIR): `aigw gateway serve` run from another checkout of the
    repository (e.g. main before a change), so old and new code are measured in one run.
Printed per row: requests/s, p50/p95/p99, the p50 added over direct, the gateway process's CPU
time per request (from /proc, user + system), and the machine's load while the row ran (the
machine is shared; figures are medians over rounds). Then, for the static upstream, the time
to first byte of a streamed run (`"stream": true`, server-sent events): from sending the
request to the first body bytes of the stream (the answer must be HTTP 200). Every target has
one keep-alive connection (an aiohttp session each, one event loop); after 5 warm-up rounds,
each of --ttfb-rounds rounds (200; 50 with --quick) sends one streamed run to each target in
turn, the first target turning from round to round, strictly one request at a time (2 ms
apart), each read to its end. Printed per target: the median and p90, and the median and p90
of its per-round differences to direct ("added": paired, so the shared machine's slow spells,
which hit the targets of one round alike, mostly cancel). Then the issue's targets
(POST /v1/threads: ≥ 3,000 req/s at C=16, ≤ +0.5 ms p50 at C=1, ≤ 0.35 ms CPU per request at
any C, ≤ +1 ms streaming TTFB added, the median paired difference), each said met or not; and
the load average at the end.

Run from the repository root:
`python -m bench.gateway [--quick] [--compare] [--rounds N] [--ttfb-rounds N]`.
Needs `wrk` (Debian: apt-get install wrk). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

OPENAI_KEY = "sk-bench-0000000000000000"
GATEWAY_KEY = "gk-bench-0000000000000000"
KEY_HEADER = "x-vercel-ai-gateway-key"
# name: (method, path after /v1, body, extra request headers as "name: value" or "")
ENDPOINTS = {"GET /v1/assistants?limit=20": ("GET", "/assistants?limit=20", "", "")}
# The same read with no-cache: through aigw it goes upstream every time, as a write does.
ENDPOINTS["GET /v1/assistants no-cache"] = (
    "GET",
    "/assistants?limit=20",
    "",
    "Cache-Control: no-cache",
)
ENDPOINTS["POST /v1/threads"] = ("POST", "/threads", '{"metadata":{"bench":"1"}}', "")

WRK_SCRIPT = """
wrk.method = os.getenv("BENCH_METHOD")
local body = os.getenv("BENCH_BODY")
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_OPENAI_KEY")
wrk.headers[os.getenv("BENCH_KEY_HEADER")] = os.getenv("BENCH_GATEWAY_KEY")
wrk.headers["OpenAI-Beta"] = "assistants=v2"
local extra = os.getenv("BENCH_HEADER")
if extra ~= "" then
  local name, value = extra:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50":%d,"p95":%d,"p99":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    url: str  # ends in /v1

    def cpu_seconds(self) -> float:
        """User + system time of the process and its children, from /proc."""
        total = 0.0
        for pid in _process_tree(self.process.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


def _process_tree(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        todo += [int(c) for c in children]
    return found


def _start(
    name: str, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Server:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=cwd
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit(f"{name} did not start: {line!r}")
    return Server(name, process, line.removeprefix("listening on "))


def _stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_ms_per_request: float | None
    errors: int
    busy: float  # the machine's CPU use while the row ran, 0-1 of all cores


@dataclass
class Row:
    samples: list[Sample] = field(default_factory=list)

    def median(self, name: str) -> float | None:
        values = [getattr(s, name) for s in self.samples if getattr(s, name) is not None]
        return statistics.median(values) if values else None


def _machine_busy() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def load(
    server: Server,
    cpu_of: Server | None,
    endpoint: str,
    connections: int,
    seconds: float,
    script: Path,
) -> Sample:
    method, path, body, header = ENDPOINTS[endpoint]
    env = dict(
        os.environ,
        BENCH_METHOD=method,
        BENCH_BODY=body,
        BENCH_HEADER=header,
        BENCH_OPENAI_KEY=OPENAI_KEY,
        BENCH_GATEWAY_KEY=GATEWAY_KEY,
        BENCH_KEY_HEADER=KEY_HEADER,
    )
    cpu_before = cpu_of.cpu_seconds() if cpu_of else 0.0
    busy_before = _machine_busy()
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "-s",
            str(script),
            server.url + path,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    busy_after = _machine_busy()
    cpu = cpu_of.cpu_seconds() - cpu_before if cpu_of else None
    found = json.loads(out.strip().splitlines()[-1])
    requests = max(1, found["requests"])
    return Sample(
        rps=requests / (found["duration_us"] / 1e6),
        p50_ms=found["p50"] / 1000,
        p95_ms=found["p95"] / 1000,
        p99_ms=found["p99"] / 1000,
        cpu_ms_per_request=cpu * 1000 / requests if cpu is not None else None,
        errors=found["errors"] + found["non2xx"],
        busy=(busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]),
    )


@dataclass
class Ttfb:
    median_ms: float
    p90_ms: float
    added_ms: float | None  # the median of the per-round differences to direct
    added_p90_ms: float | None
    new_connections: int  # opened after the warm-up; 0 when keep-alive held


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


async def _ttfb_times(
    urls: dict[str, str], rounds: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Streamed runs, one to each target per round, strictly one at a time; a target's times
    are in round order. Each target has its own session of one keep-alive connection."""
    import gc

    import aiohttp

    headers = {"Authorization": f"Bearer {OPENAI_KEY}", KEY_HEADER: GATEWAY_KEY}
    body = {"assistant_id": "asst_abc", "stream": True}
    names = list(urls)
    opened = dict.fromkeys(names, 0)
    times: dict[str, list[float]] = {name: [] for name in names}

    def counter(name: str) -> aiohttp.TraceConfig:
        async def on_create(*_: object) -> None:
            opened[name] += 1

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(on_create)
        return trace

    sessions = {
        name: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), trace_configs=[counter(name)]
        )
        for name in names
    }
    try:
        for round_ in range(warmup + rounds):
            if round_ == warmup:
                opened.update(dict.fromkeys(names, 0))
            gc.collect()
            gc.disable()  # no collection inside a timed request
            try:
                # The starting target turns each round, so none always follows the same one.
                for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    await asyncio.sleep(0.002)  # the previous answer's after-work settles
                    started = time.perf_counter()
                    async with sessions[name].post(
                        urls[name] + "/threads/thread_abc/runs", json=body, headers=headers
                    ) as answer:
                        # A refusal (e.g. the gateway's validation) would time an error.
                        if answer.status != 200:
                            raise SystemExit(
                                f"streamed run through {urls[name]}: HTTP {answer.status}"
                            )
                        await answer.content.readany()
                        elapsed = (time.perf_counter() - started) * 1000
                        await answer.read()  # the whole stream, so the connection is reused
                    if round_ >= warmup:
                        times[name].append(elapsed)
            finally:
                gc.enable()
    finally:
        for session in sessions.values():
            await session.close()
    return times, opened


def _ttfb(urls: dict[str, str], rounds: int, warmup: int = 5) -> dict[str, Ttfb]:
    """Time to first byte of a streamed run per target: the median and p90, and the median
    and p90 of its per-round differences to direct (paired, so slow spells of the shared
    machine, which hit the targets of one round alike, mostly cancel)."""
    times, opened = asyncio.run(_ttfb_times(urls, rounds, warmup))
    found = {}
    for name, values in times.items():
        added = None
        if name != "direct" and "direct" in times:
            added = [v - d for v, d in zip(values, times["direct"], strict=True)]
        found[name] = Ttfb(
            median_ms=statistics.median(values),
            p90_ms=_p90(values),
            added_ms=statistics.median(added) if added else None,
            added_p90_ms=_p90(added) if added else None,
            new_connections=opened[name],
        )
    return found


@contextmanager
def servers(
    upstream_kind: str, targets: list[str], home: Path, baseline: Path | None = None
) -> Iterator[dict[str, Server]]:
    here = [sys.executable, "-m", "bench.gateway_servers"]
    started: dict[str, Server] = {}
    try:
        if upstream_kind == "static":
            started["direct"] = _start("static", [*here, "static", "0"])
        else:
            started["direct"] = _start(
                "sandbox", [sys.executable, "-m", "aigw", "sandbox", "serve", "--port", "0"]
            )
        upstream = started["direct"].url
        for target in targets:
            if target.startswith("bare-"):
                started[target] = _start(target, [*here, target, "0", upstream])
            elif target in ("aigw", "aigw-base"):
                env = {
                    k: v for k, v in os.environ.items() if not k.startswith(("AIGW_", "GATEWAY_"))
                }
                own_home = home / f"{upstream_kind}-{target}"
                env |= {
                    "AIGW_HOME": str(own_home),
                    "GATEWAY_API_KEY": GATEWAY_KEY,
                    # Every policy on: both rate limits are decided on each call, never hit.
                    "AIGW_RATE_LIMIT": "1000000/s",
                    "AIGW_KEY_RATE_LIMIT": "1000000/s",
                }
                # `python -m aigw` from the other checkout imports that checkout's aigw.
                cwd = baseline if target == "aigw-base" else None
                started[target] = _start(
                    target,
                    [
                        sys.executable,
                        "-m",
                        "aigw",
                        "gateway",
                        "serve",
                        "--port",
                        "0",
                        "--upstream",
                        upstream,
                    ],
                    env,
                    cwd,
                )
        yield started
    finally:
        for server in started.values():
            _stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, static only")
    parser.add_argument("--compare", action="store_true", help="also the bare proxies")
    parser.add_argument("--only-bare", action="store_true", help="the bare proxies, not aigw")
    parser.add_argument(
        "--baseline", type=Path, help="also aigw run from this checkout (e.g. main), as aigw-base"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument(
        "--ttfb-rounds", type=int, help="interleaved streamed rounds (default 200, --quick 50)"
    )
    parser.add_argument("--upstreams", default="static,sandbox")
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench.gateway needs wrk: apt-get install wrk")
    rounds, seconds = (1, 2) if args.quick else (args.rounds, args.seconds)
    ttfb_rounds = args.ttfb_rounds or (50 if args.quick else 200)
    upstreams = ["static"] if args.quick else args.upstreams.split(",")
    targets = [] if args.only_bare else ["aigw"]
    if args.baseline is not None and not args.only_bare:
        targets.append("aigw-base")
    if args.compare or args.only_bare:
        targets += ["bare-aiohttp", "bare-uvicorn"]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
        f"{rounds} round(s) of {seconds:g} s per row, interleaved; wrk -t1"
    )
    with tempfile.TemporaryDirectory() as temp:
        script = Path(temp) / "bench.lua"
        script.write_text(WRK_SCRIPT)
        for upstream_kind in upstreams:
            table: dict[tuple[str, int, str], Row] = {}
            with servers(upstream_kind, targets, Path(temp), args.baseline) as running:
                for name in running:  # warm every path once
                    for endpoint in ENDPOINTS:
                        load(running[name], None, endpoint, 4, 1, script)
                for _ in range(rounds):
                    for connections in concurrencies:
                        for endpoint in ENDPOINTS:
                            for name, server in running.items():
                                cpu_of = server if name != "direct" else None
                                sample = load(
                                    server, cpu_of, endpoint, connections, seconds, script
                                )
                                table.setdefault(
                                    (endpoint, connections, name), Row()
                                ).samples.append(sample)
                first_bytes = {}
                if upstream_kind == "static":
                    urls = {name: server.url for name, server in running.items()}
                    first_bytes = _ttfb(urls, ttfb_rounds)
            _print(upstream_kind, table, list(running), first_bytes, ttfb_rounds)


def _print(
    upstream: str,
    table: dict[tuple[str, int, str], Row],
    names: list[str],
    ttfb: dict[str, Ttfb],
    ttfb_rounds: int,
) -> None:
    print(f"\nupstream: {upstream}")
    print(
        f"{'endpoint':28} {'C':>3} {'target':13} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'+p50 ms':>8} {'CPU ms/req':>10} {'errors':>6} {'busy':>5}"
    )
    for (endpoint, connections, name), row in table.items():
        direct = table[(endpoint, connections, "direct")]
        added = (row.median("p50_ms") or 0) - (direct.median("p50_ms") or 0)
        cpu = row.median("cpu_ms_per_request")
        errors = sum(s.errors for s in row.samples)
        print(
            f"{endpoint:28} {connections:>3} {name:13} {row.median('rps'):>8.0f} "
            f"{row.median('p50_ms'):>7.2f} {row.median('p95_ms'):>7.2f} "
            f"{row.median('p99_ms'):>7.2f} "
            f"{'' if name == 'direct' else f'{added:+.2f}':>8} "
            f"{'' if cpu is None else f'{cpu:.3f}':>10} {errors:>6} "
            f"{row.median('busy') or 0:>5.0%}"
        )
    if ttfb:
        print(
            f"\nstreaming time to first byte, {ttfb_rounds} interleaved rounds, one keep-alive "
            "connection per target:\n  median (p90); added: the median (p90) of the per-round "
            "differences to direct"
        )
    for name, found in ttfb.items():
        extra = ""
        if found.added_ms is not None and found.added_p90_ms is not None:
            extra = f"  (added {found.added_ms:+.2f} ms, p90 {found.added_p90_ms:+.2f})"
        reconnected = (
            f"  [{found.new_connections} new connection(s): keep-alive lost]"
            if found.new_connections
            else ""
        )
        print(
            f"streaming time to first byte, {name}: {found.median_ms:.2f} ms "
            f"(p90 {found.p90_ms:.2f}){extra}{reconnected}"
        )
    if upstream == "static" and "aigw" in names:
        _targets(table, ttfb)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 cores: above ~1.5 the figures")
    print("  are of a shared machine; compare the rows of one run, not runs)")


# The targets for aigw, one process, every policy on and every call logged, against
# the static upstream; measured on POST /v1/threads (never cached: every call goes upstream).
TARGET_ENDPOINT = "POST /v1/threads"


def _targets(table: dict[tuple[str, int, str], Row], ttfb: dict[str, Ttfb]) -> None:
    def cell(connections: int, name: str) -> Row | None:
        return table.get((TARGET_ENDPOINT, connections, name))

    checks: list[tuple[str, float | None, str, bool | None]] = []
    busy = cell(16, "aigw")
    rps = busy.median("rps") if busy else None
    checks.append(("req/s at C=16", rps, ">= 3000", None if rps is None else rps >= 3000))
    calm, direct = cell(1, "aigw"), cell(1, "direct")
    added = None
    if calm and direct:
        added = (calm.median("p50_ms") or 0) - (direct.median("p50_ms") or 0)
    checks.append(
        ("added p50 at C=1, ms", added, "<= 0.5", None if added is None else added <= 0.5)
    )
    cpus = [
        c
        for (endpoint, _, name), row in table.items()
        if endpoint == TARGET_ENDPOINT and name == "aigw"
        for c in [row.median("cpu_ms_per_request")]
        if c is not None
    ]
    cpu = max(cpus) if cpus else None
    checks.append(
        ("CPU per request, ms (worst C)", cpu, "<= 0.35", None if cpu is None else cpu <= 0.35)
    )
    first = ttfb["aigw"].added_ms if "aigw" in ttfb else None
    checks.append(
        ("streaming TTFB added, ms", first, "<= 1", None if first is None else first <= 1)
    )
    print(f"\ntargets ({TARGET_ENDPOINT}, static upstream, aigw one process, every call logged):")
    for what, value, target, met in checks:
        shown = "–" if value is None else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
        verdict = "not measured" if met is None else "met" if met else "NOT met"
        print(f"  {what:32} {shown:>9}   target {target:8} {verdict}")


if __name__ == "__main__":
    main()
