"""`aigw metrics` end to end: which store it reads, JSON and table output, the cost view with
the seed's estimate, alert thresholds and their exit codes, and bad input."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pytest_httpx import HTTPXMock

from aigw.common.log_record import LogRecord
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.cli import Cli
from tests.helpers.metrics import SEED_COST, load_postgres
from tests.helpers.migrations import apply_all
from tests.test_terminal_output import in_terminal


def rows(statuses: list[int | None], *, latency: float = 100.0, **extra: object) -> list[LogRecord]:
    now = datetime.now(UTC)
    return [
        LogRecord(
            endpoint="/v1/threads/{thread_id}/runs",
            method="POST",
            created_at=now - timedelta(minutes=5 + i),
            status_code=status,
            latency_ms=latency + i,
            **extra,  # type: ignore[arg-type]
        )
        for i, status in enumerate(statuses)
    ]


def write_local(home: Path, records: list[LogRecord]) -> None:
    store = SQLiteRepository(home / "aigw.sqlite3")
    store.write(records)
    store.close()


def test_metrics_reads_the_local_store_when_no_remote_is_configured(
    cli: Cli, isolated_env: Path
) -> None:
    write_local(isolated_env, rows([200, 200, 500]))
    result = cli("metrics", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["source"] == "local"
    assert report["total"]["calls"] == 3
    assert report["total"]["success_rate"] == pytest.approx(2 / 3)
    assert report["groups"][0]["key"] == "/v1/threads/{thread_id}/runs"
    assert len(report["trend"]) in (24, 25)  # every hour of the window, empty ones as zero
    assert result.stderr == ""


@pytest.mark.postgres
def test_the_remote_store_is_read_when_configured_and_local_forces_the_local_one(
    cli: Cli, isolated_env: Path, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_local(isolated_env, rows([200]))
    load_postgres(migrated_db, rows([200, 429, 503, None]))
    monkeypatch.setenv("SUPABASE_DB_URL", migrated_db)
    remote = json.loads(cli("metrics", "--json").stdout)
    local = json.loads(cli("metrics", "--json", "--local").stdout)
    assert (remote["source"], remote["total"]["attempts"]) == ("postgres", 4)
    t = remote["total"]
    assert (t["rate_limited"], t["server_errors"], t["network_errors"]) == (1, 1, 1)
    assert (local["source"], local["total"]["attempts"]) == ("local", 1)


def test_an_error_rate_above_the_threshold_exits_1_and_names_it(
    cli: Cli, isolated_env: Path
) -> None:
    write_local(isolated_env, rows([200, 500, 500, 200], latency=3000.0))
    broken = cli("metrics", "--since", "15m", "--max-error-rate", "5%", "--json")
    assert broken.exit_code == 1
    assert "--max-error-rate" in broken.stderr and "50.0%" in broken.stderr
    assert "--max-p95" not in broken.stderr
    assert json.loads(broken.stdout)["alerts"][0]["threshold"] == "--max-error-rate"
    both = cli("metrics", "--since", "15m", "--max-error-rate", "0.6", "--max-p95", "2s")
    assert both.exit_code == 1
    assert "--max-p95" in both.stderr and "--max-error-rate" not in both.stderr
    fine = cli("metrics", "--since", "15m", "--max-error-rate", "60%", "--max-p95", "5s")
    assert fine.exit_code == 0, fine.stderr


def test_an_empty_window_breaks_no_threshold(cli: Cli) -> None:
    result = cli("metrics", "--since", "15m", "--max-error-rate", "1%", "--max-p95", "1ms")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].startswith("total\t\t0\t0\t")  # piped: no rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "3x"], "--since expects a duration"),
        (["--until", "yesterday"], "--until expects a duration"),
        (["--since", "1h", "--until", "2h"], "must be before --until"),
        (["--by", "colour"], "--by expects one of endpoint, agent, model, hour"),
        (["--max-error-rate", "lots"], "--max-error-rate expects a rate"),
        (["--max-error-rate", "120%"], "between 0% and 100%"),
        (["--max-p95", "fast"], "--max-p95 expects a duration"),
    ],
)
def test_bad_windows_and_thresholds_are_one_line_errors_with_exit_2(
    cli: Cli, args: list[str], message: str
) -> None:
    result = cli("metrics", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_since_and_until_take_iso_8601_times(cli: Cli, isolated_env: Path) -> None:
    write_local(isolated_env, rows([200, 200]))
    now = datetime.now(UTC)
    since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (now - timedelta(minutes=5, seconds=30)).isoformat()
    report = json.loads(cli("metrics", "--since", since, "--until", until, "--json").stdout)
    assert report["total"]["calls"] == 1  # the row 5 min ago is after --until


def test_the_table_shows_groups_total_trend_and_cost(cli: Cli, isolated_env: Path) -> None:
    write_local(
        isolated_env,
        rows([200, 500], model="gpt-4o", prompt_tokens=1000, completion_tokens=500),
    )
    out = in_terminal("metrics", columns=160)
    for text in ("/v1/threads/{thread_id}/runs", "total", "p95", "cache", "trend"):
        assert text in out
    assert any(bar in out for bar in "▁▂▃▄▅▆▇█")
    assert "cost per model" in out and "gpt-4o" in out


def test_piped_metrics_are_one_header_line_and_tab_separated_rows(
    cli: Cli, isolated_env: Path
) -> None:
    write_local(isolated_env, rows([200, 500, 429], latency=100.0))
    result = cli("metrics")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["endpoint", "name", "calls"] and "p95_ms" in header
    assert all(len(line.split("\t")) == len(header) for line in lines)
    by_name = {
        line.split("\t")[0]: dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]
    }
    assert set(by_name) == {"/v1/threads/{thread_id}/runs", "total"}
    total = by_name["total"]
    assert (total["calls"], total["server_errors"], total["rate_limited"]) == ("3", "1", "1")
    assert total["success_rate"] == "0.3333" and total["p50_ms"] == "101.0"
    assert not set(result.stdout) & set("│┃━─┼╇╋┡┩▁▂▃▄▅▆▇█")
    assert "  " not in result.stdout  # no padding
    assert result.stderr == ""


def test_the_cost_view_prices_recorded_usage_with_defaults_or_configured_prices(
    cli: Cli, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_local(
        isolated_env,
        rows([200, 200], model="gpt-4o-2024-08-06", prompt_tokens=1_000_000,
             completion_tokens=100_000, assistant_id="asst_1"),
    )  # fmt: skip
    report = json.loads(cli("metrics", "--json").stdout)
    (model,) = report["cost_by_model"]
    assert (model["tokens_in"], model["tokens_out"]) == (2_000_000, 200_000)
    assert model["cost_usd"] == pytest.approx(2 * 2.50 + 0.2 * 10.00)  # gpt-4o family price
    assert model["estimated"] is False
    assert report["cost_by_agent"][0]["key"] == "asst_1"
    monkeypatch.setenv("AIGW_PRICES", '{"gpt-4o-2024-08-06": [1, 1]}')
    cheaper = json.loads(cli("metrics", "--json").stdout)
    assert cheaper["cost_by_model"][0]["cost_usd"] == pytest.approx(2.2)


@pytest.mark.postgres
def test_without_usage_the_cost_is_the_seeds_message_estimate_marked_estimated(
    cli: Cli, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        user = uuid.uuid4()
        conn.execute("INSERT INTO auth.users (id) VALUES (%s)", (user,))
        for name, model, contents in [
            ("helper", "gpt-4o", [("user", "x" * 400), ("assistant", "y" * 2000)]),
            ("writer", "gpt-4-turbo", [("user", "w" * 101)]),
        ]:
            (agent,) = conn.execute(
                "INSERT INTO agents (name, model, openai_assistant_id) VALUES (%s, %s, %s)"
                " RETURNING id",
                (name, model, f"asst_{name}"),
            ).fetchone()  # type: ignore[misc]
            (conv,) = conn.execute(
                "INSERT INTO conversations (agent_id, user_id, openai_thread_id)"
                " VALUES (%s, %s, %s) RETURNING id",
                (agent, user, f"thread_{name}"),
            ).fetchone()  # type: ignore[misc]
            for role, content in contents:
                conn.execute(
                    "INSERT INTO messages (conversation_id, role, content, created_at)"
                    " VALUES (%s, %s, %s, now() - interval '2 days')",
                    (conv, role, content),
                )
        seed = conn.execute(SEED_COST).fetchall()
    monkeypatch.setenv("SUPABASE_DB_URL", migrated_db)
    report = json.loads(cli("metrics", "--since", "30d", "--by", "agent", "--json").stdout)
    agents = {row["label"]: row for row in report["cost_by_agent"]}
    assert {name: agents[name]["estimated_tokens"] for name, _, _ in seed} == {
        name: tokens for name, _, tokens in seed
    }
    helper = agents["helper"]
    assert helper["estimated"] is True
    assert (helper["tokens_in"], helper["tokens_out"]) == (100, 500)
    assert helper["cost_usd"] == pytest.approx((100 * 2.50 + 500 * 10.00) / 1e6)


def test_supabase_gets_the_same_functions_through_rpc(
    cli: Cli, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://proj.supabase.co"
    monkeypatch.setenv("SUPABASE_URL", url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
    total = {
        "dimension": "total", "group_key": None, "group_label": None, "calls": 3,
        "attempts": 4, "successful_calls": 3, "successful_attempts": 3, "client_errors": 0,
        "rate_limited": 1, "server_errors": 0, "network_errors": 0, "avg_latency_ms": 120.5,
        "p50_ms": 110, "p95_ms": 190.25, "p99_ms": 199.05, "cache_hits": 1,
        "cache_lookups": 2, "prompt_tokens": None, "completion_tokens": None,
    }  # fmt: skip
    httpx_mock.add_response(method="POST", url=f"{url}/rest/v1/rpc/aigw_metrics", json=[total])
    httpx_mock.add_response(method="POST", url=f"{url}/rest/v1/rpc/aigw_metrics_usage", json=[])
    trend = {"bucket": "2026-01-31T14:05:00Z", "model": "gpt-4o", "prompt_tokens": 1000,
             "completion_tokens": 100}  # fmt: skip
    httpx_mock.add_response(
        method="POST", url=f"{url}/rest/v1/rpc/aigw_metrics_model_trend", json=[trend]
    )
    result = cli("metrics", "--since", "2h", "--by", "model", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["source"] == "supabase"
    assert report["total"]["p95_ms"] == 190.25 and report["total"]["cache_hit_rate"] == 0.5
    sent = httpx_mock.get_requests()
    body = json.loads(sent[0].content)
    # A 2 h window: the trend in 5 min buckets (sql/0008's argument, sent only when not 1 h).
    assert set(body) == {"p_since", "p_until", "p_by", "p_endpoint", "p_agent", "p_bucket_seconds"}
    assert (body["p_by"], body["p_bucket_seconds"]) == ("model", 300)
    assert report["bucket"] == "5m" and len(report["trend"]) in (24, 25)
    (point,) = report["cost_trend"]
    assert point["start"] == "2026-01-31T14:05:00Z" and point["cost_usd"] > 0
    assert sent[0].headers["apikey"].startswith("eyJ")


@pytest.mark.postgres
def test_a_database_without_the_metrics_migration_says_to_run_migrate(
    cli: Cli, fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aigw.storage.migrations import shipped_sql_dir

    core = shipped_sql_dir() / "0001_core.sql"
    folder = Path(str(fresh_db).rpartition("/")[2])
    folder.mkdir()
    (folder / core.name).write_text(core.read_text())
    apply_all(fresh_db, folder)
    monkeypatch.setenv("SUPABASE_DB_URL", fresh_db)
    result = cli("metrics")
    assert result.exit_code == 8
    assert "lacks aigw's metrics functions" in result.stderr and "aigw migrate" in result.stderr


@pytest.mark.postgres
def test_a_database_migrated_before_the_model_trend_answers_with_an_empty_cost_chart(
    cli: Cli, fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aigw.storage.migrations import shipped_sql_dir

    up_to_0007 = tmp_path / "sql"
    up_to_0007.mkdir()
    for migration in sorted(shipped_sql_dir().glob("*.sql")):
        if migration.name < "0008":
            (up_to_0007 / migration.name).write_text(migration.read_text())
    apply_all(fresh_db, up_to_0007)
    load_postgres(fresh_db, rows([200, 500], prompt_tokens=10, completion_tokens=5))
    monkeypatch.setenv("SUPABASE_DB_URL", fresh_db)
    result = cli("metrics", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"]["attempts"] == 2
    assert report["cost_trend"] == []


def test_supabase_without_the_model_trend_function_answers_with_an_empty_cost_chart(
    cli: Cli, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://proj.supabase.co"
    monkeypatch.setenv("SUPABASE_URL", url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
    total = {
        "dimension": "total", "group_key": None, "group_label": None, "calls": 1,
        "attempts": 1, "successful_calls": 1, "successful_attempts": 1, "client_errors": 0,
        "rate_limited": 0, "server_errors": 0, "network_errors": 0, "avg_latency_ms": 10.0,
        "p50_ms": 10, "p95_ms": 10, "p99_ms": 10, "cache_hits": 0,
        "cache_lookups": 0, "prompt_tokens": None, "completion_tokens": None,
    }  # fmt: skip
    httpx_mock.add_response(method="POST", url=f"{url}/rest/v1/rpc/aigw_metrics", json=[total])
    httpx_mock.add_response(method="POST", url=f"{url}/rest/v1/rpc/aigw_metrics_usage", json=[])
    missing = {
        "code": "PGRST202", "details": None, "hint": None,
        "message": "Could not find the function public.aigw_metrics_model_trend",
    }  # fmt: skip
    httpx_mock.add_response(
        method="POST",
        url=f"{url}/rest/v1/rpc/aigw_metrics_model_trend",
        status_code=404,
        json=missing,
    )
    result = cli("metrics", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"]["calls"] == 1 and report["cost_trend"] == []
