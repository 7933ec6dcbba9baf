"""`aigw metrics` numbers, on the real Postgres (sql/0002_metrics.sql, as 0003 redefines it) and on
a real SQLite file with the same generated rows: equal to the seed's example query and to
`percentile_cont`, equal to each other, and right at the edges (empty window, one row, all
failures, ties); and 0003's faster functions return exactly what 0002's did."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aigw.common.log_record import LogRecord
from aigw.storage.aggregates import GroupStats, MetricsQuery
from aigw.storage.migrations import shipped_sql_dir
from aigw.storage.postgres import PostgresRepository
from aigw.storage.sqlite import SQLiteRepository
from tests.helpers.metrics import (
    NOW,
    PERCENTILES,
    SEED_LATENCY,
    generated_rows,
    load_postgres,
    load_sqlite,
)
from tests.helpers.migrations import apply_all

pytestmark = pytest.mark.postgres

# Rows sit on whole seconds; half-second edges keep `>` (the seed) and `>=` (aigw) equal.
SINCE = NOW - timedelta(hours=24, milliseconds=500)
UNTIL = NOW - timedelta(milliseconds=500)
AGENT = "0b7a5f0e-8c1e-4d1c-9a55-00000000a6e7"


def both(
    url: str, path: Path, rows: list[LogRecord]
) -> tuple[PostgresRepository, SQLiteRepository]:
    load_postgres(url, rows)
    return PostgresRepository(url), load_sqlite(path, rows)


def by_key(stats: list[GroupStats], dimension: str = "by") -> dict[str | None, GroupStats]:
    return {s.group_key: s for s in stats if s.dimension == dimension}


def total(stats: list[GroupStats]) -> GroupStats:
    return next(s for s in stats if s.dimension == "total")


def same(a: list[GroupStats], b: list[GroupStats]) -> None:
    """Equal group for group; floats to 12 significant digits (SQLite averages in binary)."""

    def key(s: GroupStats) -> tuple[str, str]:
        return (s.dimension, s.group_key or "")

    assert [key(s) for s in sorted(a, key=key)] == [key(s) for s in sorted(b, key=key)]
    for left, right in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        for name in GroupStats._fields:
            x, y = getattr(left, name), getattr(right, name)
            if isinstance(x, float) or isinstance(y, float):
                assert x == pytest.approx(y, rel=1e-12), (key(left), name)
            else:
                assert x == y, (key(left), name)


def seed_numbers(url: str) -> tuple[list[tuple[Any, ...]], dict[str, tuple[float, ...]]]:
    window = {"since": SINCE, "until": UNTIL}
    with psycopg.connect(url) as conn:
        seed = conn.execute(SEED_LATENCY, window).fetchall()
        pct = {row[0]: tuple(row[1:]) for row in conn.execute(PERCENTILES, window)}
    return seed, pct


def test_per_endpoint_numbers_equal_the_seeds_query_and_percentile_cont_on_both_stores(
    migrated_db: str, tmp_path: Path
) -> None:
    rows = generated_rows(800)
    remote, local = both(migrated_db, tmp_path / "l.sqlite3", rows)
    seed, pct = seed_numbers(migrated_db)
    assert len(seed) == 5
    for store in (remote, local):
        groups = by_key(store.metrics(MetricsQuery(SINCE, UNTIL, "endpoint")))
        assert set(groups) == {e for e, *_ in seed}
        for endpoint, avg_latency, total_calls, successful_calls in seed:
            g = groups[endpoint]
            assert g.attempts == total_calls
            assert g.successful_attempts == successful_calls
            assert g.avg_latency_ms == pytest.approx(float(avg_latency), rel=1e-12)
            assert (g.p50_ms, g.p95_ms, g.p99_ms) == pytest.approx(pct[endpoint], rel=1e-12)
    same(remote.metrics(MetricsQuery(SINCE, UNTIL)), local.metrics(MetricsQuery(SINCE, UNTIL)))


def test_a_retried_call_counts_as_one_call_and_each_try_as_an_attempt(
    migrated_db: str, tmp_path: Path
) -> None:
    rows = generated_rows(500, seed=11)
    inside = [r for r in rows if SINCE <= r.created_at < UNTIL]
    calls = len({r.call_id for r in inside if r.call_id}) + sum(1 for r in inside if not r.call_id)
    ok_calls = len(
        {r.call_id for r in inside if r.call_id and r.status_code and 200 <= r.status_code < 300}
    ) + sum(1 for r in inside if not r.call_id and r.status_code and 200 <= r.status_code < 300)
    assert calls < len(inside)  # the data has retries
    remote, local = both(migrated_db, tmp_path / "l.sqlite3", rows)
    for store in (remote, local):
        t = total(store.metrics(MetricsQuery(SINCE, UNTIL)))
        assert (t.calls, t.attempts, t.successful_calls) == (calls, len(inside), ok_calls)
        codes = [r.status_code for r in inside]
        assert t.rate_limited == codes.count(429)
        assert t.server_errors == sum(1 for c in codes if c is not None and c >= 500)
        assert t.client_errors == sum(1 for c in codes if c is not None and 400 <= c < 500) - (
            codes.count(429)
        )
        assert t.network_errors == codes.count(None)
        assert t.cache_hits == sum(1 for r in inside if r.cache_status == "hit")
        assert t.cache_lookups == sum(1 for r in inside if r.cache_status in ("hit", "miss"))


@pytest.mark.parametrize("by", ["endpoint", "agent", "model", "hour"])
def test_every_grouping_and_filter_gives_the_same_numbers_on_postgres_and_sqlite(
    migrated_db: str, tmp_path: Path, by: str
) -> None:
    remote, local = both(migrated_db, tmp_path / "l.sqlite3", generated_rows(600, seed=3))
    queries = [
        MetricsQuery(SINCE, UNTIL, by),
        MetricsQuery(NOW - timedelta(hours=3, milliseconds=500), UNTIL, by),
        MetricsQuery(SINCE, UNTIL, by, endpoint="/v1/threads/{thread_id}/runs"),
        MetricsQuery(SINCE, UNTIL, by, agent="asst_b2"),
        MetricsQuery(None, None, by),
        # sql/0008: the model filter and the trend's bucket (5 min, 1 day)
        MetricsQuery(SINCE, UNTIL, by, model="gpt-4o-mini"),
        MetricsQuery(NOW - timedelta(hours=3, milliseconds=500), UNTIL, by, bucket_s=300),
        MetricsQuery(NOW - timedelta(days=3), UNTIL, by, model="gpt-4o", bucket_s=86400),
    ]
    for query in queries:
        same(remote.metrics(query), local.metrics(query))


def test_an_empty_window_gives_one_zero_total_and_no_groups_on_both_stores(
    migrated_db: str, tmp_path: Path
) -> None:
    remote, local = both(migrated_db, tmp_path / "l.sqlite3", generated_rows(50))
    empty = MetricsQuery(NOW + timedelta(days=1), NOW + timedelta(days=2))
    for store in (remote, local):
        stats = store.metrics(empty)
        assert [s.dimension for s in stats] == ["total"]
        t = stats[0]
        assert (t.calls, t.attempts, t.avg_latency_ms, t.p95_ms) == (0, 0, None, None)
    same(remote.metrics(empty), local.metrics(empty))


def _row(latency: float | None, status: int | None = 200, **extra: Any) -> LogRecord:
    return LogRecord(
        endpoint="/v1/threads",
        method="POST",
        created_at=NOW - timedelta(minutes=5),
        status_code=status,
        latency_ms=latency,
        **extra,
    )


def test_a_single_row_is_every_percentile_of_its_group(migrated_db: str, tmp_path: Path) -> None:
    remote, local = both(migrated_db, tmp_path / "l.sqlite3", [_row(420.0)])
    for store in (remote, local):
        t = total(store.metrics(MetricsQuery(SINCE, UNTIL)))
        assert (t.calls, t.p50_ms, t.p95_ms, t.p99_ms, t.avg_latency_ms) == (1, 420, 420, 420, 420)


def test_all_failures_give_a_zero_success_count_and_the_split_adds_up(
    migrated_db: str, tmp_path: Path
) -> None:
    rows = [_row(10.0, 500), _row(20.0, 429), _row(None, None), _row(40.0, 404), _row(50.0, 503)]
    remote, local = both(migrated_db, tmp_path / "l.sqlite3", rows)
    for store in (remote, local):
        t = total(store.metrics(MetricsQuery(SINCE, UNTIL)))
        assert (t.calls, t.successful_calls, t.successful_attempts) == (5, 0, 0)
        assert (t.client_errors, t.rate_limited, t.server_errors, t.network_errors) == (1, 1, 2, 1)
        assert t.avg_latency_ms == 30.0  # the row without latency is left out, as AVG does


def test_tied_latencies_interpolate_exactly_as_percentile_cont(
    migrated_db: str, tmp_path: Path
) -> None:
    rows = [_row(v) for v in (100.0, 100.0, 100.0, 200.0, 200.0, 900.0)]
    remote, local = both(migrated_db, tmp_path / "l.sqlite3", rows)
    _, pct = seed_numbers(migrated_db)
    assert pct["/v1/threads"] == pytest.approx((150.0, 725.0, 865.0))
    for store in (remote, local):
        t = total(store.metrics(MetricsQuery(SINCE, UNTIL)))
        assert (t.p50_ms, t.p95_ms, t.p99_ms) == pytest.approx(pct["/v1/threads"], rel=1e-12)


def test_token_usage_per_agent_and_model_is_the_same_on_both_stores(
    migrated_db: str, tmp_path: Path
) -> None:
    remote, local = both(migrated_db, tmp_path / "l.sqlite3", generated_rows(400, seed=5))
    query = MetricsQuery(SINCE, UNTIL)
    assert remote.usage(query) == local.usage(query)
    assert sum(u.prompt_tokens or 0 for u in remote.usage(query)) > 0
    for query in (
        MetricsQuery(SINCE, UNTIL, model="gpt-4o"),
        MetricsQuery(SINCE, UNTIL, bucket_s=300),
        MetricsQuery(SINCE, UNTIL, agent="asst_a1", bucket_s=86400),
    ):
        assert remote.usage(query) == local.usage(query)
        assert remote.model_trend(query) == local.model_trend(query)
        trend = remote.model_trend(query)
        assert trend and sum(t.prompt_tokens or 0 for t in trend) == sum(
            u.prompt_tokens or 0 for u in remote.usage(query)
        )


def test_rows_without_a_model_cost_as_their_agents_model_on_both_stores(
    migrated_db: str, tmp_path: Path
) -> None:
    remote = PostgresRepository(migrated_db)
    local = SQLiteRepository(tmp_path / "l.sqlite3")
    owned = remote.upsert_agent(
        openai_assistant_id="asst_owned", name="owned", instructions=None, model="gpt-4o"
    )
    named = remote.upsert_agent(
        openai_assistant_id="asst_named", name="named", instructions=None, model="gpt-4o-mini"
    )
    local.remember_agent("asst_owned", owned, "gpt-4o")
    local.remember_agent("asst_named", named, "gpt-4o-mini")
    rows = [
        _row(10.0, agent_id=owned, prompt_tokens=100, completion_tokens=10),  # by its agent id
        _row(10.0, assistant_id="asst_named", prompt_tokens=200, completion_tokens=20),
        _row(10.0, model="gpt-4.1", agent_id=owned, prompt_tokens=1, completion_tokens=1),
        _row(10.0, prompt_tokens=5, completion_tokens=5),  # no model, no agent: none
    ]
    remote.write(rows)
    local.write(rows)
    query = MetricsQuery(SINCE, UNTIL)
    trend = remote.model_trend(query)
    assert local.model_trend(query) == trend
    assert {(t.model, t.prompt_tokens) for t in trend} == {
        ("gpt-4o", 100),
        ("gpt-4o-mini", 200),
        ("gpt-4.1", 1),
        (None, 5),
    }

    def spent(store: Any) -> set[tuple[Any, ...]]:
        return {(u.agent_key, u.model, u.prompt_tokens) for u in store.usage(query)}

    assert spent(local) == spent(remote)
    remote.close()
    local.close()


def test_the_faster_functions_of_0003_return_exactly_what_0002_returned(
    fresh_db: str, tmp_path: Path
) -> None:
    # The database as it was after 0002, with rows, agents and odd cache statuses; every
    # grouping, filter and window read before and after 0003 redefines the two functions.
    upto_0002 = tmp_path / "sql"
    upto_0002.mkdir()
    for name in ("0001_core.sql", "0002_metrics.sql"):
        shutil.copy(shipped_sql_dir() / name, upto_0002)
    apply_all(fresh_db, upto_0002)
    rows = generated_rows(700, seed=13)
    rows += [
        dataclasses.replace(r, cache_status=status, agent_id=agent)
        for r, status, agent in zip(
            generated_rows(60, seed=17),
            ["HIT", "Miss", "bypass", "Expired", "stale", ""] * 10,
            [None, AGENT] * 30,
            strict=True,
        )
    ]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (id, name, openai_assistant_id, model) VALUES"
            " (%s, 'Support', 'asst_a1', 'gpt-4o'), (gen_random_uuid(), 'Sales', NULL, NULL)",
            (AGENT,),
        )
    load_postgres(fresh_db, rows)
    queries = [
        MetricsQuery(since, until, by, endpoint=endpoint, agent=agent)
        for since, until in [(SINCE, UNTIL), (NOW - timedelta(hours=3), UNTIL), (None, None)]
        for by in ("endpoint", "agent", "model", "hour")
        for endpoint, agent in [
            (None, None),
            ("/v1/threads/{thread_id}/runs", None),
            (None, "asst_b2"),
            (None, "Support"),
            (None, AGENT),
        ]
    ] + [MetricsQuery(NOW + timedelta(days=1), NOW + timedelta(days=2))]

    def read() -> list[tuple[list[GroupStats], list[Any]]]:
        store = PostgresRepository(fresh_db)
        try:
            return [(sorted(store.metrics(q), key=repr), store.usage(q)) for q in queries]
        finally:
            store.close()

    before = read()
    assert apply_all(fresh_db)[0] == "0003_metrics_faster"  # later migrations follow
    after = read()
    assert any(u for _, u in before) and any(len(m) > 1 for m, _ in before)
    assert after == before  # floats too: exactly, not approximately
