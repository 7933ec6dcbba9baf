"""Endpoint templates in SQL agree with aigw/gateway/endpoints.py; rows from other writers are
templated on insert; the metrics functions read the window through the created_at index."""

from __future__ import annotations

import random

import psycopg
import pytest

from aigw.gateway.endpoints import template

pytestmark = pytest.mark.postgres

PATHS = [
    "/v1/threads/thread_abc/runs",
    "/v1/threads/thread_abc/runs/run_1",
    "/v1/threads/thread_abc/runs/run_1/cancel",
    "/v1/threads/thread_abc/runs/run_1/submit_tool_outputs",
    "/v1/threads/thread_abc/runs/run_1/steps/step_9",
    "/v1/threads/thread_abc/messages/msg_77?limit=20&order=desc",
    "/v1/assistants/asst_XyZ",
    "/v1/assistants",
    "/v1/threads/runs",
    "/v1/threads/{thread_id}/runs/{run_id}",
    "https://gateway.ai.vercel.app/v1/threads/thread_1/runs#frag",
    "https://gateway.example/openai/v1/assistants/asst_1",
    "/openai/v1/threads/thread_1",
    "/v1/threads/",
    "/v1/files/file-abc123/content",
    "/v1/vector_stores/vs_1/file_batches/vsfb_2",
    "/something/else/abc12345678",
    "/",
    "",
]

WORDS = [
    "v1", "assistants", "threads", "messages", "runs", "steps", "files", "vector_stores",
    "file_batches", "batches", "models", "responses", "cancel", "submit_tool_outputs",
    "content", "thread_abc", "run_1", "asst_XyZ123", "msg_9", "step_7", "call_abc",
    "abc12345678", "{thread_id}", "x", "openai", "gpt-4o", "file-abc123", "", "A.b:c-1234567",
]  # fmt: skip


def random_paths(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    paths = []
    for _ in range(count):
        path = "/".join(rng.choice(WORDS) for _ in range(rng.randint(0, 7)))
        shape = rng.random()
        if shape < 0.3:
            path = "/" + path
        elif shape < 0.4:
            path = "https://gw.example.com/" + path
        elif shape < 0.5:
            path = "/" + path + "?limit=20&after=msg_1"
        elif shape < 0.6:
            path = "/" + path + "/"
        paths.append(path)
    return paths


def test_sql_and_python_make_the_same_template_for_every_path(migrated_db: str) -> None:
    paths = PATHS + random_paths(1500)
    with psycopg.connect(migrated_db) as conn:
        got = conn.execute(
            "SELECT p, public.aigw_endpoint_template(p) FROM unnest(%s::text[]) p", (paths,)
        ).fetchall()
    differences = [(p, sql) for p, sql in got if sql != template(p)]
    assert differences == []
    assert dict(got)["/v1/threads/thread_abc/runs"] == "/v1/threads/{thread_id}/runs"


def test_the_seed_apps_raw_path_is_stored_as_a_template_and_grouped_with_aigws_rows(
    migrated_db: str,
) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        # the seed's logGatewayCall insert, raw path and all
        conn.execute(
            "INSERT INTO ai_gateway_logs (endpoint, method, status_code, latency_ms) "
            "VALUES ('/v1/threads/thread_abc/runs', 'POST', 200, 100)"
        )
        conn.execute(
            "INSERT INTO ai_gateway_logs (endpoint, method, status_code, latency_ms, path, source)"
            " VALUES ('/v1/threads/{thread_id}/runs', 'POST', 500, 300,"
            " '/v1/threads/thread_def/runs', 'aigw')"
        )
        rows = conn.execute(
            "SELECT endpoint, path FROM ai_gateway_logs ORDER BY latency_ms"
        ).fetchall()
        seed = conn.execute(
            "SELECT endpoint, AVG(latency_ms), COUNT(*) FROM ai_gateway_logs GROUP BY endpoint"
        ).fetchall()
    assert rows == [
        ("/v1/threads/{thread_id}/runs", "/v1/threads/thread_abc/runs"),
        ("/v1/threads/{thread_id}/runs", "/v1/threads/thread_def/runs"),
    ]
    assert [(e, float(a), n) for e, a, n in seed] == [("/v1/threads/{thread_id}/runs", 200.0, 2)]


def scans_of_the_logs(conn: psycopg.Connection, sql: str) -> list[tuple[str, str | None]]:
    """(node type, index) of every plan node that reads ai_gateway_logs."""
    (plan,) = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()  # type: ignore[misc]
    found: list[tuple[str, str | None]] = []

    def walk(node: dict, parent_index: str | None = None) -> None:
        children = node.get("Plans", [])
        if node.get("Relation Name") == "ai_gateway_logs":
            index = node.get("Index Name") or next(
                (c.get("Index Name") for c in children if c.get("Index Name")), None
            )
            found.append((node["Node Type"], index))
        for child in children:
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_the_metrics_functions_read_a_small_window_through_the_created_at_index(
    migrated_db: str,
) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ai_gateway_logs (created_at, endpoint, method, status_code, latency_ms,"
            " source) SELECT now() - i * interval '1 minute', '/v1/threads', 'GET', 200, i % 500,"
            " 'aigw' FROM generate_series(1, 43200) i"  # 30 days, one row a minute
        )
        conn.execute("ANALYZE ai_gateway_logs")
        window = "now() - interval '1 hour', now()"
        plans = [
            scans_of_the_logs(conn, f"SELECT * FROM public.aigw_metrics({window}, 'endpoint')"),
            scans_of_the_logs(conn, f"SELECT * FROM public.aigw_metrics({window}, 'hour')"),
            scans_of_the_logs(conn, f"SELECT * FROM public.aigw_metrics_usage({window})"),
        ]
    for scans in plans:
        assert scans  # the function was inlined: its own plan is visible to EXPLAIN
        for node_type, index in scans:
            assert node_type in ("Index Scan", "Bitmap Heap Scan", "Index Only Scan")
            assert index == "ai_gateway_logs_created_at_idx"


def test_only_the_service_role_may_call_the_metrics_functions(migrated_db: str) -> None:
    call = "SELECT count(*) FROM public.aigw_metrics(now() - interval '1 hour', now())"
    allowed = {}
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        for role in ("service_role", "authenticated", "anon"):
            try:
                with conn.transaction():
                    conn.execute(f"SET LOCAL ROLE {role}")
                    conn.execute(call)
                allowed[role] = True
            except psycopg.errors.InsufficientPrivilege:
                allowed[role] = False
    assert allowed == {"service_role": True, "authenticated": False, "anon": False}
