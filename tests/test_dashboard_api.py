"""The dashboard's JSON endpoints over real HTTP: the same numbers as `aigw metrics --json` for
the same window (local SQLite and the real Postgres), the previous window, every hour, the
latest errors redacted, bad parameters as 400s, no secrets, and the page mounted under another
application. The command itself: it prints its URL, serves, and drains on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from aigw.common.log_record import LogRecord
from aigw.dashboard import dashboard_app
from aigw.settings import load_settings
from aigw.storage.base import LogFilter
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.cli import Cli
from tests.helpers.dashboard import (
    SEEDED_ROWS,
    dashboard_at_now,
    get_json,
    metrics_json,
    running,
    seed_local,
)
from tests.helpers.metrics import NOW, generated_rows, load_postgres, load_sqlite

WINDOWS = [
    {},
    {"since": "6h"},
    {"since": "7d", "endpoint": "/v1/threads/thread_abc123/runs"},
    {"since": "2026-03-09T18:00Z", "until": "2026-03-10T06:00Z", "agent": "asst_a1"},
]


def query(params: dict[str, str]) -> str:
    return "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""


@pytest.mark.parametrize("params", WINDOWS, ids=["default", "6h", "endpoint", "agent"])
def test_the_pages_report_is_aigw_metrics_json_for_the_same_window(
    cli: Cli, isolated_env: Path, params: dict[str, str]
) -> None:
    seed_local(isolated_env)
    with dashboard_at_now() as url:
        status, view = get_json(url + "api/metrics" + query(params))
    assert status == 200, view
    assert view["report"]["total"]["calls"] > 0
    assert view["report"] == metrics_json(cli, view["report"])


def test_the_previous_window_and_the_hours_are_aigw_metrics_numbers_too(
    cli: Cli, isolated_env: Path
) -> None:
    seed_local(isolated_env)
    with dashboard_at_now() as url:
        _, view = get_json(url + "api/metrics?since=12h")
    previous = view["previous"]
    assert (previous["until"], previous["since"]) == (
        view["report"]["since"],
        (NOW - timedelta(hours=24)).isoformat(),
    )
    earlier = metrics_json(cli, {**view["report"], **previous})
    assert previous["total"] == earlier["total"]
    assert previous["cost_total_usd"] == earlier["cost_total_usd"]
    by_hour = metrics_json(cli, view["report"], "--by", "hour")["groups"]
    assert view["report"]["bucket"] == "1h"  # 12 h: hourly buckets
    hours = {h["start"]: h["stats"] for h in view["buckets"]}
    assert len(view["buckets"]) == 13  # 00:30 to 12:30: every hour, those without calls too
    assert {k: v for k, v in hours.items() if v["attempts"]} == {g["key"]: g for g in by_hour}


@pytest.mark.parametrize(
    ("since", "bucket", "points"),
    [("6h", "5m", (72, 73)), ("2d", "1h", (48, 49)), ("7d", "1d", (7, 8))],
)
def test_the_bucket_follows_the_window_and_the_cli_trend_agrees(
    cli: Cli, isolated_env: Path, since: str, bucket: str, points: tuple[int, int]
) -> None:
    seed_local(isolated_env)
    with dashboard_at_now() as url:
        _, view = get_json(url + f"api/metrics?since={since}")
    report = view["report"]
    assert report["bucket"] == bucket
    assert len(view["buckets"]) in points and len(report["trend"]) == len(view["buckets"])
    assert report == metrics_json(cli, report)  # the CLI picks the same bucket for the window
    for point, row in zip(report["trend"], view["buckets"], strict=True):
        assert (point["start"], point["attempts"]) == (row["start"], row["stats"]["attempts"])
    assert sum(p["attempts"] for p in report["trend"]) == report["total"]["attempts"]


def test_the_model_filter_and_the_cost_over_time_agree_with_aigw_metrics(
    cli: Cli, isolated_env: Path
) -> None:
    seed_local(isolated_env)
    with dashboard_at_now() as url:
        _, everything = get_json(url + "api/metrics?since=24h")
        _, view = get_json(url + "api/metrics?since=24h&model=gpt-4o")
    report = view["report"]
    assert report["model"] == "gpt-4o"
    assert report == metrics_json(cli, report)  # `aigw metrics --model gpt-4o` for the window
    rows = [r for r in generated_rows(600) if NOW - timedelta(hours=24) <= r.created_at < NOW]
    assert report["total"]["attempts"] == sum(r.model == "gpt-4o" for r in rows) > 0
    assert [c["key"] for c in report["cost_by_model"]] == ["gpt-4o"]
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    models = {r.id: r.model for r in store.records(LogFilter(limit=None))}
    store.close()
    assert view["errors"] and {models[e["id"]] for e in view["errors"]} == {"gpt-4o"}
    # Over time, per model: the buckets add up to the window's recorded tokens per model.
    trend = everything["report"]["cost_trend"]
    for row in everything["report"]["cost_by_model"]:
        mine = [p for p in trend if p["model"] == row["key"]]
        assert sum(p["tokens_in"] + p["tokens_out"] for p in mine) == row["recorded_tokens"]
        assert sum(p["cost_usd"] for p in mine) == pytest.approx(row["cost_usd"])
    assert {p["model"] for p in trend} == {"gpt-4o", "gpt-4o-mini"}


@pytest.mark.postgres
def test_on_postgres_the_page_and_aigw_metrics_agree(
    cli: Cli, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_postgres(migrated_db, generated_rows(400))
    monkeypatch.setenv("SUPABASE_DB_URL", migrated_db)
    with dashboard_at_now() as url:
        _, view = get_json(url + "api/metrics?since=24h")
        _, again = get_json(url + "api/metrics?since=24h")
    assert view["report"]["source"] == "postgres"
    assert view["report"]["total"]["attempts"] > 0
    assert view["report"] == metrics_json(cli, view["report"]) == again["report"]


def test_the_latest_errors_are_the_newest_failed_attempts_with_secrets_redacted(
    isolated_env: Path,
) -> None:
    rows = generated_rows(300)
    leaked = LogRecord(
        endpoint="/v1/threads",
        method="POST",
        created_at=NOW - timedelta(minutes=1),
        status_code=401,
        error_message="bad key sk-proj-abcdefghijklmnopqrstuvwxyz0123 for ops@example.com",
    )
    store = SQLiteRepository(isolated_env / "aigw.sqlite3")
    store.write([*rows, leaked])
    store.close()
    with dashboard_at_now() as url:
        _, view = get_json(url + "api/metrics")
        status, row = get_json(url + f"api/logs/{leaked.id}")
    errors = view["errors"]
    failed = sorted(
        (r for r in [*rows, leaked] if r.created_at > NOW - timedelta(hours=24)),
        key=lambda r: (r.created_at, r.id),
        reverse=True,
    )
    failed = [r for r in failed if r.status_code is None or not 200 <= r.status_code < 300]
    assert [e["id"] for e in errors] == [r.id for r in failed[:20]]
    assert errors[0]["status_code"] == 401
    assert "sk-proj" not in errors[0]["error_message"]
    assert "ops@example.com" not in errors[0]["error_message"]
    assert "[REDACTED" in errors[0]["error_message"]
    assert status == 200 and row["id"] == leaked.id
    assert "sk-proj" not in json.dumps(row)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("since=yesterday", "--since expects a duration"),
        ("since=1h&until=2h", "must be before --until"),
        ("until=31/12/2026", "--until expects a duration"),
        ("bucket=5m", "unknown parameter 'bucket'"),
        ("since=-5h", "--since expects a duration"),
    ],
)
def test_bad_parameters_are_a_400_with_a_one_line_message(
    isolated_env: Path, params: str, message: str
) -> None:
    with dashboard_at_now() as url:
        status, body = get_json(url + "api/metrics?" + params)
    assert status == 400
    assert message in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    assert "Traceback" not in json.dumps(body) and "\n" not in body["error"]["message"]


def test_an_unknown_row_or_api_path_is_a_json_404(isolated_env: Path) -> None:
    seed_local(isolated_env, 10)
    with dashboard_at_now() as url:
        missing_row = get_json(url + "api/logs/0190f3c2-0000-7000-8000-000000000000")
        missing_path = get_json(url + "api/nothing")
    assert missing_row[0] == missing_path[0] == 404
    assert "no log row" in missing_row[1]["error"]["message"]


@pytest.mark.postgres
def test_no_password_or_key_reaches_the_page(
    cli: Cli, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local server trusts every connection, so the password is sent and ignored.
    secret_url = migrated_db.replace("postgres@", "postgres:pw-s3cret-9@")
    load_postgres(migrated_db, generated_rows(50))
    monkeypatch.setenv("SUPABASE_DB_URL", secret_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-never-on-the-page-0000")
    monkeypatch.setenv("GATEWAY_API_KEY", "gk-never-on-the-page")
    with dashboard_at_now() as url:
        _, view = get_json(url + "api/metrics")
        bodies = [
            httpx.get(url + path, timeout=30).text
            for path in ("", "static/dashboard.js", "api/metrics?since=bad")
        ]
    assert view["report"]["source"] == "postgres"
    seen = json.dumps(view) + "".join(bodies)
    for secret in ("pw-s3cret-9", "sk-test-key-never", "gk-never", migrated_db):
        assert secret not in seen


def test_the_page_and_its_assets_come_from_the_package_with_relative_urls(
    isolated_env: Path,
) -> None:
    import re

    with dashboard_at_now() as url:
        page = httpx.get(url, timeout=30)
        linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets = [a for a in linked if a != "data:,"]  # the empty favicon
        fetched = {asset: httpx.get(url + asset, timeout=30) for asset in assets}
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert sorted(assets) == [
        "static/dashboard.css",
        "static/dashboard.js",
        "static/uPlot.iife.min.js",
        "static/uPlot.min.css",
    ]
    assert all(r.status_code == 200 and r.content for r in fetched.values())


def test_mounted_under_another_app_it_serves_the_same_page_and_numbers(
    cli: Cli, isolated_env: Path
) -> None:
    seed_local(isolated_env)
    parent = web.Application()
    parent.add_subapp("/dashboard", dashboard_app(load_settings(), clock=NOW.timestamp))
    with running(parent) as url:
        redirect = httpx.get(url + "dashboard?since=6h", timeout=30)
        page = httpx.get(url + "dashboard/", timeout=30)
        script = httpx.get(url + "dashboard/static/dashboard.js", timeout=30)
        _, view = get_json(url + "dashboard/api/metrics?since=6h")
    assert (redirect.status_code, redirect.headers["location"]) == (302, "/dashboard/?since=6h")
    assert page.status_code == script.status_code == 200
    assert view["report"] == metrics_json(cli, view["report"])


def _start(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AIGW_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "aigw", "dashboard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_the_command_prints_its_url_serves_and_stops_cleanly_on_sigterm(
    isolated_env: Path,
) -> None:
    seed_local(isolated_env, 20)
    server = _start(isolated_env, "--port", "0")
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("dashboard on http://127.0.0.1:"), line
        url = line.split()[-1]
        status, view = get_json(url + "api/metrics?since=3650d")
        assert status == 200 and view["report"]["total"]["attempts"] == 20
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
        server.wait(timeout=30)
    assert server.stderr is not None and server.stderr.read() == ""


def test_a_port_in_use_is_a_one_line_error_with_exit_2(isolated_env: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _start(isolated_env, "--port", str(port))
        out, err = server.communicate(timeout=60)
    assert server.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err and out == ""


@pytest.mark.postgres
def test_on_postgres_the_latest_errors_follow_the_agent_filter_as_aigw_metrics_does(
    cli: Cli, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import psycopg

    agent = "0b7a5f0e-8c1e-4d1c-9a55-00000000a6e7"
    rows = [
        dataclasses.replace(r, agent_id=agent) if r.assistant_id == "asst_a1" and i % 2 else r
        for i, r in enumerate(generated_rows(500))
    ]
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (id, name, openai_assistant_id) VALUES (%s, 'Support', 'asst_a1')",
            (agent,),
        )
    load_postgres(migrated_db, rows)
    monkeypatch.setenv("SUPABASE_DB_URL", migrated_db)
    window = [r for r in rows if NOW - timedelta(hours=24) <= r.created_at < NOW]

    def failed(match: Any) -> list[str]:
        found = [r for r in window if match(r) and not (r.status_code and r.status_code < 300)]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [r.id for r in found[:20]]

    with dashboard_at_now() as url:
        _, by_name = get_json(url + "api/metrics?since=24h&agent=Support")
        _, by_id = get_json(url + f"api/metrics?since=24h&agent={agent}")
    for view in (by_name, by_id):
        assert view["report"] == metrics_json(cli, view["report"])
    # By name: the rows that carry the agent's id (what aigw_metrics counts for a name).
    assert by_name["report"]["total"]["attempts"] == sum(r.agent_id == agent for r in window)
    assert [e["id"] for e in by_name["errors"]] == failed(lambda r: r.agent_id == agent)
    # By id: those, and the rows of its assistant that carry no agent id.
    assert [e["id"] for e in by_id["errors"]] == failed(lambda r: r.assistant_id == "asst_a1")
    assert by_id["report"]["total"]["attempts"] == sum(r.assistant_id == "asst_a1" for r in window)


def test_on_the_local_store_the_latest_errors_and_logs_find_an_agent_as_aigw_metrics_does(
    cli: Cli, isolated_env: Path
) -> None:
    import dataclasses

    agent = "0b7a5f0e-8c1e-4d1c-9a55-00000000a6e7"
    rows = [
        dataclasses.replace(r, agent_id=agent) if r.assistant_id == "asst_a1" and i % 2 else r
        for i, r in enumerate(generated_rows(SEEDED_ROWS))
    ]
    # As the mirror leaves it: rows synced before the assistant's agent was known keep no
    # agent_id; the local map gives it to them when an agent's rows are asked for.
    store = load_sqlite(isolated_env / "aigw.sqlite3", rows)
    store.mark_synced(store.follow_position())
    store.remember_agent("asst_a1", agent, "gpt-4o")
    store.close()
    window = [r for r in rows if NOW - timedelta(hours=24) <= r.created_at < NOW]
    mine = [r for r in window if r.assistant_id == "asst_a1"]
    assert any(r.agent_id is None for r in mine) and any(r.agent_id == agent for r in mine)
    failed = [r for r in mine if not (r.status_code and r.status_code < 300)]
    failed.sort(key=lambda r: (r.created_at, r.id), reverse=True)

    with dashboard_at_now() as url:
        _, by_id = get_json(url + f"api/metrics?since=24h&agent={agent}")
        _, by_assistant = get_json(url + "api/metrics?since=24h&agent=asst_a1")
    for view in (by_id, by_assistant):
        report = view["report"]
        assert report == metrics_json(cli, report)
        total = report["total"]
        assert total["attempts"] == len(mine)
        assert total["attempts"] - total["successful_attempts"] == len(failed)
        assert [e["id"] for e in view["errors"]] == [r.id for r in failed[:20]]
    listed = cli(
        *("logs", "list", "--agent", agent, "--limit", "1000", "--json"),
        *("--since", by_id["report"]["since"], "--until", by_id["report"]["until"]),
    )
    assert listed.exit_code == 0, listed.stderr
    assert {row["id"] for row in json.loads(listed.stdout)} == {r.id for r in mine}
