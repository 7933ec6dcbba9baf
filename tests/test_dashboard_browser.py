"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

The page is loaded against a store seeded with known rows; what it shows (tiles, table cells)
is checked against `aigw metrics --json` for the window it read. Also: changing the window
queries again, an empty store shows the empty state, sorting, and screenshots at two widths
saved under test-artefacts/. Under CI=true a missing chromium fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import Cli
from tests.helpers.dashboard import ARTEFACTS, dashboard_at_now, metrics_json, seed_local

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LOAD_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        message = f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(LOAD_TIMEOUT_MS)
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: problems.append(str(e)))
    opened.problems = problems
    yield opened
    context.close()


def drawn(page: Any, generation: int = 1) -> str:
    """Wait until the page has drawn its `generation`-th answer; its state: ready or empty."""
    page.wait_for_function(
        "(g) => Number(document.body.dataset.generation || 0) >= g"
        " || document.body.dataset.state === 'error'",
        arg=generation,
    )
    return str(page.evaluate("document.body.dataset.state"))


def view_of(response: Any) -> dict[str, Any]:
    return response.json()  # type: ignore[no-any-return]


# -- the page's formats, as dashboard.js writes them (toFixed rounds half away from zero) -----
def fixed(value: float, places: int) -> str:
    return str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def shown(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "count":
        return f"{value:,}"
    if kind == "rate":
        return fixed(value * 100, 1) + "%"
    if kind == "ms":
        return fixed(value, 0) + " ms"
    if kind == "usd":
        return "$" + fixed(value, 4 if value < 1 else 2)
    return str(value)


TILES = {
    "calls": "count",
    "success_rate": "rate",
    "error_rate": "rate",
    "p50_ms": "ms",
    "p95_ms": "ms",
    "p99_ms": "ms",
    "cache_hit_rate": "rate",
    "cost_total_usd": "usd",
}
ENDPOINT_COLUMNS = {
    "calls": "count",
    "attempts": "count",
    "success_rate": "rate",
    "avg_latency_ms": "ms",
    "p50_ms": "ms",
    "p95_ms": "ms",
    "p99_ms": "ms",
    "client_errors": "count",
    "rate_limited": "count",
    "server_errors": "count",
    "network_errors": "count",
    "cache_hit_rate": "rate",
}


def tiles_on(page: Any) -> dict[str, tuple[str, str]]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.tile')].map((t) => {
             const v = t.querySelector('.value');
             return [t.dataset.metric, [v.textContent, v.dataset.value]];
           }))"""
    )


def table_on(page: Any, selector: str) -> list[dict[str, tuple[str, str]]]:
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector + ' tbody tr')].map((tr) =>
             Object.fromEntries([...tr.children].map((c) =>
               [c.dataset.key, [c.textContent, c.dataset.value]])))""",
        selector,
    )


def assert_tiles_match(page: Any, expected: dict[str, Any]) -> None:
    tiles = tiles_on(page)
    for metric, kind in TILES.items():
        value = (
            expected["cost_total_usd"] if metric == "cost_total_usd" else expected["total"][metric]
        )
        text, raw = tiles[metric]
        assert text == shown(value, kind), metric
        assert (float(raw) if raw else None) == value, metric


def test_tiles_and_table_cells_show_what_aigw_metrics_json_gives(
    page: Any, cli: Cli, isolated_env: Path
) -> None:
    seed_local(isolated_env)
    with dashboard_at_now() as url:
        with page.expect_response(lambda r: "api/metrics" in r.url) as answer:
            page.goto(url)
        assert drawn(page) == "ready", page.problems
        expected = metrics_json(cli, view_of(answer.value)["report"])
        assert expected["total"]["calls"] > 0
        assert_tiles_match(page, expected)
        rows = table_on(page, "#endpoints-table")
        assert [r["key"][0] for r in rows] == [g["key"] for g in expected["groups"]]
        for row, group in zip(rows, expected["groups"], strict=True):
            for key, kind in ENDPOINT_COLUMNS.items():
                assert row[key][0] == shown(group[key], kind), (group["key"], key)
                assert (float(row[key][1]) if row[key][1] else None) == group[key]
        agents = table_on(page, "#agents-table")
        assert [a["cost_usd"][0] for a in agents] == [
            shown(c["cost_usd"], "usd") for c in expected["cost_by_agent"]
        ]
        assert [a["recorded_tokens"][0] for a in agents] == [
            shown(c["recorded_tokens"], "count") for c in expected["cost_by_agent"]
        ]
        assert page.locator("#errors-table tbody tr").count() == 20
        assert page.locator("#chart-status canvas").count() == 1
    assert page.problems == []


def test_changing_the_window_queries_again_and_the_url_carries_it(
    page: Any, cli: Cli, isolated_env: Path
) -> None:
    seed_local(isolated_env)
    with dashboard_at_now() as url:
        page.goto(url)
        drawn(page)
        with page.expect_response(lambda r: "api/metrics?since=6h" in r.url) as answer:
            page.select_option("#since", "6h")
        drawn(page, 2)
        assert page.url.endswith("?since=6h")
        report = view_of(answer.value)["report"]
        six_hours = metrics_json(cli, report)
        assert_tiles_match(page, six_hours)
        # The shared URL opens the same view.
        page.goto(url + "?since=6h&endpoint=/v1/threads")
        drawn(page)
        assert page.input_value("#endpoint") == "/v1/threads"
        assert [r["key"][0] for r in table_on(page, "#endpoints-table")] == ["/v1/threads"]
    assert page.problems == []


def test_a_bad_window_in_the_url_says_so_on_the_page(page: Any, isolated_env: Path) -> None:
    with dashboard_at_now() as url:
        page.goto(url + "?since=yesterday")
        assert drawn(page) == "error"
        assert "--since expects a duration" in page.inner_text("#problem")


def test_an_empty_store_shows_the_empty_state_not_errors(page: Any, isolated_env: Path) -> None:
    with dashboard_at_now() as url:
        page.goto(url)
        assert drawn(page) == "empty"
        assert page.is_visible("#empty") and not page.is_visible("#problem")
        assert not page.is_visible("#charts")
        assert tiles_on(page)["calls"] == ["0", "0"]
        assert "No failed calls" in page.inner_text("#errors-table")
    assert page.problems == []


def test_clicking_a_column_heading_sorts_the_table(page: Any, isolated_env: Path) -> None:
    seed_local(isolated_env)
    with dashboard_at_now() as url:
        page.goto(url)
        drawn(page)
        page.click("#endpoints-table th[data-key='p95_ms'] button")
        p95 = [float(r["p95_ms"][1]) for r in table_on(page, "#endpoints-table")]
        assert p95 == sorted(p95, reverse=True)
        page.keyboard.press("Enter")  # the heading is a button: the keyboard sorts too
        p95 = [float(r["p95_ms"][1]) for r in table_on(page, "#endpoints-table")]
        assert p95 == sorted(p95)
        sorted_by = page.get_attribute("#endpoints-table th[data-key='p95_ms']", "aria-sort")
        assert sorted_by == "ascending"


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["laptop", "phone"])
def test_screenshots_at_a_laptop_and_a_phone_width(
    browser: Any, isolated_env: Path, width: int, height: int
) -> None:
    seed_local(isolated_env)
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        with dashboard_at_now() as url:
            page.goto(url)
            assert drawn(page) == "ready"
            ARTEFACTS.mkdir(exist_ok=True)
            path = ARTEFACTS / f"dashboard-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            # Nothing is wider than the screen: a phone scrolls only the tables sideways.
            overflow = page.evaluate("document.documentElement.scrollWidth")
    finally:
        context.close()
    assert path.stat().st_size > 10_000
    assert overflow <= width


def test_it_reads_again_on_its_own_and_pause_stops_that_from_the_keyboard(
    page: Any, isolated_env: Path
) -> None:
    seed_local(isolated_env)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "api/metrics" in r.url else None)
    with dashboard_at_now() as url:
        page.goto(url + "?since=6h&refresh=0.3")
        assert drawn(page) == "ready"
        drawn(page, 3)  # two more reads with nothing done: the refresh
        assert all("refresh" not in u for u in asked)  # the page's setting stays in the page
        # Pause from the keyboard: Tab to the button, Space presses it.
        page.focus("#model")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "pause"
        page.keyboard.press("Space")
        assert page.get_attribute("#pause", "aria-pressed") == "true"
        page.wait_for_function(
            "() => !document.querySelector('#status').textContent.startsWith('Loading')"
        )
        paused_at = len(asked)
        page.wait_for_timeout(1500)  # five refresh intervals
        assert len(asked) == paused_at, "the page read again while paused"
        with page.expect_response(lambda r: "api/metrics" in r.url):
            page.keyboard.press("Enter")  # Resume: reads at once
        assert page.get_attribute("#pause", "aria-pressed") == "false"
        assert page.inner_text("#pause") == "Pause"
    assert page.problems == []


def test_the_model_filter_and_the_cost_over_time_chart(
    page: Any, cli: Cli, isolated_env: Path
) -> None:
    seed_local(isolated_env)
    with dashboard_at_now() as url:
        page.goto(url)
        drawn(page)
        assert page.get_attribute("#chart-cost", "data-models") == "gpt-4o,gpt-4o-mini"
        assert page.locator("#chart-cost canvas").count() == 1
        assert "per hour" in page.inner_text("#charts figcaption")
        with page.expect_response(lambda r: "model=gpt-4o" in r.url) as answer:
            page.fill("#model", "gpt-4o")
            page.press("#model", "Enter")
        drawn(page, 2)
        assert page.url.endswith("model=gpt-4o")
        report = view_of(answer.value)["report"]
        assert_tiles_match(page, metrics_json(cli, report))
        assert page.get_attribute("#chart-cost", "data-models") == "gpt-4o"
        page.select_option("#since", "6h")
        drawn(page, 3)
        assert "per 5 minutes" in page.inner_text("#charts figcaption")
    assert page.problems == []
