"""A newcomer's first minutes: `aigw demo` offline, and `aigw doctor` telling what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from aigw.sandbox import Sandbox
from aigw.storage.base import LogFilter
from tests.helpers.cli import Cli, point_at


def test_demo_runs_offline_end_to_end_and_keeps_its_logs(cli: Cli, tmp_path: Path) -> None:
    kept = tmp_path / "demo-home"
    result = cli("demo", "--run-ms", "50", "--keep", str(kept))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for step in (
        "$ aigw assistants create",
        "$ aigw threads create",
        "$ aigw messages create",
        "--wait",
        "$ aigw metrics --since 1h",
    ):
        assert step in out
    assert "You said: Hello! What does aigw do for an operator?" in out
    assert "completed" in result.stderr and "tokens" in result.stderr

    listed = cli("--home", str(kept), "logs", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    endpoints = {row["endpoint"] for row in json.loads(listed.stdout)}
    assert {
        "/v1/assistants",
        "/v1/threads",
        "/v1/threads/{thread_id}/messages",
        "/v1/threads/{thread_id}/runs",
    } <= endpoints


def test_demo_without_keep_leaves_no_state_behind(cli: Cli, isolated_env: Path) -> None:
    result = cli("demo", "--run-ms", "20")
    assert result.exit_code == 0, result.stderr
    temp_home = result.stderr.split("state in ")[1].split()[0]
    assert not Path(temp_home).exists()
    assert not isolated_env.exists()  # nor in the user's own AIGW_HOME


def doctor(cli: Cli, *args: str) -> tuple[int, dict[str, dict]]:
    result = cli("doctor", *args, "--json")
    report = json.loads(result.stdout)
    assert report["ok"] == (result.exit_code == 0)
    return result.exit_code, {check["name"]: check for check in report["checks"]}


def test_doctor_passes_against_a_working_gateway(cli: Cli, gateway_env) -> None:
    code, checks = doctor(cli)
    assert code == 0
    assert checks["variables"]["status"] == "ok"
    assert "…abcd" in checks["variables"]["detail"]
    assert "sk-test" not in json.dumps(checks)
    assert checks["upstream"]["status"] == "ok"
    assert checks["route"]["detail"].startswith("gateway → " + gateway_env.url)
    assert checks["breaker"]["status"] == "ok"
    assert checks["remote store"]["status"] == "skip"


def test_doctor_smoke_runs_the_critical_endpoints_and_cleans_up(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    code, checks = doctor(cli, "--smoke")
    assert code == 0, checks
    smoke = [name for name in checks if name.startswith("smoke:")]
    assert smoke == [
        "smoke: assistant",
        "smoke: thread",
        "smoke: message",
        "smoke: run",
        "smoke: cleanup thread",
        "smoke: cleanup assistant",
        "smoke: cleanup rows",
    ]
    assert all(checks[name]["status"] == "ok" for name in smoke)
    assert "completed" in checks["smoke: run"]["detail"]
    assert fresh_sandbox.state.assistants.values() == []
    assert fresh_sandbox.state.threads.values() == []
    # Its log rows are gone too: only the doctor's own probe (the assistants list) is left.
    rows = json.loads(cli("logs", "list", "--json").stdout)
    assert [(r["method"], r["endpoint"]) for r in rows] == [("GET", "/v1/assistants")]
    by_agent = json.loads(cli("metrics", "--by", "agent", "--json").stdout)
    assert [group["key"] for group in by_agent["groups"]] == [None]


@pytest.mark.postgres
def test_doctor_smoke_leaves_no_agent_nor_log_row_in_postgres(
    cli: Cli, fresh_sandbox: Sandbox, remote_env: str, monkeypatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    code, checks = doctor(cli, "--smoke")
    assert code == 0, checks
    assert checks["smoke: cleanup rows"]["status"] == "ok"
    by_agent = json.loads(cli("metrics", "--by", "agent", "--json").stdout)
    assert by_agent["source"] == "postgres"
    assert "aigw doctor smoke test" not in json.dumps(by_agent)
    with psycopg.connect(remote_env) as conn:
        agents = conn.execute("SELECT count(*) FROM agents").fetchone()
        logged = conn.execute("SELECT endpoint, assistant_id FROM ai_gateway_logs").fetchall()
    assert agents == (0,)
    assert logged == [("/v1/assistants", None)]  # the doctor's probe


@pytest.mark.postgres
def test_forget_removes_rows_a_sync_already_sent_to_postgres(
    remote_env: str, isolated_env: Path
) -> None:
    from aigw.common.log_record import LogRecord
    from aigw.storage.postgres import PostgresRepository

    remote = PostgresRepository(remote_env)
    try:
        agent = remote.upsert_agent(
            openai_assistant_id="asst_smoke",
            name="aigw doctor smoke test",
            instructions=None,
            model="gpt-4o-mini",
        )
        rows = [
            LogRecord(
                endpoint="/v1/assistants",
                method="POST",
                assistant_id="asst_smoke",
                agent_id=agent,
                status_code=200,
            ),
            LogRecord(endpoint="/v1/threads", method="POST", status_code=200),
        ]
        remote.write(rows)
        gone = remote.forget([rows[0].id], openai_assistant_id="asst_smoke")
        left = remote.records(LogFilter())
        still = remote.find_agent("asst_smoke")
    finally:
        remote.close()
    assert gone == 2
    assert [r.id for r in left] == [rows[1].id]
    assert still is None


@pytest.mark.postgres
def test_forget_keeps_an_agent_another_conversation_refers_to_and_the_schema_refuses_it(
    migrated_db: str, auth_user: str
) -> None:
    import psycopg

    from aigw.storage.postgres import PostgresRepository

    remote = PostgresRepository(migrated_db)
    try:
        agent = remote.upsert_agent(
            openai_assistant_id="asst_shared", name="shared", instructions=None, model="gpt-4o"
        )
        for thread in ("thread_a", "thread_b"):
            remote.conn.execute(
                "INSERT INTO conversations (agent_id, user_id, openai_thread_id) "
                "VALUES (%s, %s, %s)",
                (agent, auth_user, thread),
            )
        gone = remote.forget([], openai_assistant_id="asst_shared", openai_thread_id="thread_a")
        kept = remote.find_agent("asst_shared")
    finally:
        remote.close()
    assert gone == 1  # the conversation only
    assert kept is not None
    # The rule the Supabase REST path relies on: the database itself refuses the delete.
    with (
        psycopg.connect(migrated_db, autocommit=True) as conn,
        pytest.raises(psycopg.errors.ForeignKeyViolation),
    ):
        conn.execute("DELETE FROM agents WHERE openai_assistant_id = 'asst_shared'")


def test_doctor_names_the_fix_for_a_bad_gateway_key(cli: Cli, keyed_sandbox, monkeypatch) -> None:
    point_at(monkeypatch, keyed_sandbox, gateway_key="gk-wrong")
    code, checks = doctor(cli)
    assert code == 1
    assert checks["upstream"]["status"] == "fail"
    assert checks["upstream"]["detail"].startswith("401")
    assert "GATEWAY_API_KEY" in checks["upstream"]["fix"]
    human = cli("doctor")
    assert "✗ upstream" in human.stdout and "fix: check GATEWAY_API_KEY" in human.stdout


def test_doctor_without_variables_fails_and_skips_the_upstream(cli: Cli) -> None:
    code, checks = doctor(cli)
    assert code == 1
    assert checks["variables"]["status"] == "fail"
    assert "OPENAI_API_KEY" in checks["variables"]["fix"]
    assert checks["upstream"]["status"] == "skip"


def test_doctor_sees_an_unmigrated_then_a_migrated_database(
    cli: Cli, gateway_env, fresh_db: str, monkeypatch
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", fresh_db)
    code, checks = doctor(cli)
    assert code == 1
    assert checks["schema"]["status"] == "fail" and checks["schema"]["fix"] == "aigw migrate"
    assert "pending" in checks["schema"]["detail"]

    assert cli("migrate").exit_code == 0
    code, checks = doctor(cli)
    assert checks["schema"]["status"] == "ok", checks["schema"]
    assert checks["remote store"]["status"] == "ok"
    assert code == 0, checks


def test_doctor_reports_an_unreachable_database(cli: Cli, gateway_env, monkeypatch) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://postgres@127.0.0.1:9/none")
    code, checks = doctor(cli)
    assert code == 1
    assert checks["remote store"]["status"] == "fail"
    assert checks["schema"]["status"] == "fail"


def test_doctor_sees_installed_completions(cli: Cli, gateway_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cli("completions", "install", "bash").exit_code == 0
    _, checks = doctor(cli)
    assert checks["completions"] == {
        "name": "completions",
        "status": "ok",
        "detail": "installed for bash",
        "fix": None,
    }


def test_doctor_does_not_count_its_own_probe_as_pending_sync(
    cli: Cli, gateway_env, migrated_db: str, monkeypatch
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", migrated_db)
    _, checks = doctor(cli)
    assert checks["upstream"]["status"] == "ok"  # a logged call: one row, synced as it ends
    assert checks["outbox"] == {
        "name": "outbox",
        "status": "ok",
        "detail": "nothing pending sync",
        "fix": None,
    }
