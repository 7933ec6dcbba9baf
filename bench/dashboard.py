"""The dashboard's first render against `aigw metrics --since 24h --json`, 1,000,000 rows.

The store is the real Postgres with bench/metrics.py's data: 1,000,000 rows over 30 days (the
~33,000 rows of a 24 h window). Two figures, taking turns in every round:

* the page: `aigw dashboard` already serving (as it is when someone opens it); a fresh browser
  context each round (nothing cached) opens the page in Debian's chromium, headless, and the
  time is the page's own `performance.now()` when its tiles and charts are drawn for the first
  time (the frame after they are built), counted from the start of the navigation: the HTML,
  CSS, uPlot and the page's script, the JSON (the window, the previous window, the latest
  errors), and the drawing;
* the command: `aigw metrics --since 24h --json` as a subprocess (interpreter, imports,
  connect, queries, JSON out), as bench/metrics.py times it.

Target: page / command ≤ 1.5. Run: python -m bench.dashboard [runs]   (from the repository
root; AIGW_BENCH_PG_URL: admin URL, default local `test`; needs /usr/bin/chromium)
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402

import psycopg  # noqa: E402

from bench import compile_aigw  # noqa: E402
from bench.metrics import ADMIN_URL, generate, timed, with_database  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def start_dashboard(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "aigw", "dashboard", "--port", "0"],
        env=env,
        cwd=env["AIGW_HOME"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("dashboard on "):
        server.kill()
        raise SystemExit(f"the dashboard did not start: {line!r}")
    return server, line.split()[-1]


def first_render(browser: object, url: str) -> tuple[float, int]:
    """Milliseconds from navigation start to the first drawn tiles and charts; the calls."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(url + "?since=24h")
        page.wait_for_function("() => window.aigwFirstRender !== undefined", timeout=60_000)
        if page.evaluate("document.body.dataset.state") != "ready":
            raise SystemExit("the page did not draw the window: " + page.inner_text("#problem"))
        calls = int(page.get_attribute(".tile[data-metric=calls] .value", "data-value") or 0)
        return float(page.evaluate("window.aigwFirstRender")), calls
    finally:
        context.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    from aigw.storage.migrations import apply

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    compile_aigw()
    name = f"aigw_bench_dash_{uuid.uuid4().hex[:8]}"
    url = with_database(ADMIN_URL, name)
    home = tempfile.mkdtemp(prefix="aigw-bench-home-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGW_", "SUPABASE_"))}
    env.update({"AIGW_HOME": home, "NO_COLOR": "1", "SUPABASE_DB_URL": url})
    metrics = [sys.executable, "-m", "aigw", "metrics", "--since", "24h", "--json"]
    server = None
    page_ms: list[float] = []
    command_ms: list[float] = []
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        apply(url)
        print(f"generating 1,000,000 rows over 30 days in {name} …", file=sys.stderr)
        generate(url, 1, 1_000_000)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute("CHECKPOINT")
        server, page_url = start_dashboard(env)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            first_render(browser, page_url)  # warm: caches, the server's connections
            timed(metrics, env)
            for _ in range(runs):
                ms, calls = first_render(browser, page_url)
                page_ms.append(ms)
                command_ms.append(timed(metrics, env) * 1000)
            browser.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    page, command = statistics.median(page_ms), statistics.median(command_ms)
    print(f"1,000,000 rows, 24 h window ({calls:,} calls); {runs} rounds taking turns; medians")
    print(
        f"  dashboard first render (tiles and charts drawn, in chromium): {page:.0f} ms "
        f"[best {min(page_ms):.0f}]"
    )
    print(
        f"  aigw metrics --since 24h --json (subprocess): {command:.0f} ms "
        f"[best {min(command_ms):.0f}]"
    )
    print(f"  ratio page / command: {page / command:.2f} (target ≤ 1.5)")
    load = os.getloadavg()
    print(f"  machine load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
