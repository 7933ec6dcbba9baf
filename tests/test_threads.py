"""`aigw threads` end to end: the real CLI, the real OpenAI SDK, the sandbox over HTTP."""

from __future__ import annotations

import json

import psycopg

from tests.helpers.cli import Cli, make_thread, ok_json, point_at


def test_create_with_messages_and_metadata_then_get_returns_the_thread(
    cli: Cli, gateway_env
) -> None:
    made = ok_json(cli, "threads", "create", "--message", "hi", "--message", "again", "-m", "k=v")
    assert made["id"].startswith("thread_") and made["metadata"] == {"k": "v"}

    got = ok_json(cli, "threads", "get", made["id"])
    assert got["id"] == made["id"] and got["metadata"] == {"k": "v"}
    texts = [
        m["content"][0]["text"]["value"]
        for m in ok_json(cli, "messages", "list", made["id"], "--order", "asc")
    ]
    assert texts == ["hi", "again"]


def test_get_renders_a_record_for_people(cli: Cli, gateway_env) -> None:
    thread_id = ok_json(cli, "threads", "create", "-m", "team=ops")["id"]
    result = cli("threads", "get", thread_id)
    assert result.exit_code == 0 and result.stderr == ""
    assert thread_id in result.stdout and "team=ops" in result.stdout


def test_update_replaces_the_metadata(cli: Cli, gateway_env) -> None:
    thread_id = ok_json(cli, "threads", "create", "-m", "a=1")["id"]
    updated = ok_json(cli, "threads", "update", thread_id, "-m", "b=2")
    assert updated["metadata"] == {"b": "2"}


def test_update_without_metadata_is_a_usage_error(cli: Cli, gateway_env) -> None:
    result = cli("threads", "update", make_thread(cli))
    assert result.exit_code == 2 and "nothing to update" in result.stderr


def test_delete_asks_unless_yes_and_then_the_thread_is_gone(cli: Cli, gateway_env) -> None:
    thread_id = make_thread(cli, "bye")
    refused = cli("threads", "delete", thread_id)
    assert refused.exit_code == 2 and "--yes" in refused.stderr

    deleted = ok_json(cli, "threads", "delete", thread_id, "--yes")
    assert deleted == {"id": thread_id, "object": "thread.deleted", "deleted": True}
    missing = cli("threads", "get", thread_id)
    assert missing.exit_code == 1 and "No thread found" in missing.stderr


def test_a_bad_thread_id_is_refused_before_anything_is_sent(
    cli: Cli, fresh_sandbox, monkeypatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    for args in (["get", "asst_123"], ["update", "x/y", "-m", "a=b"], ["delete", "run_1", "--yes"]):
        result = cli("threads", *args)
        assert result.exit_code == 2, args
        assert "invalid thread_id" in result.stderr and "Traceback" not in result.stderr
    assert fresh_sandbox.state.request_count == 0


def test_too_many_metadata_pairs_are_refused_before_sending(
    cli: Cli, fresh_sandbox, monkeypatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    pairs = [arg for i in range(17) for arg in ("-m", f"k{i}=v")]
    result = cli("threads", "create", *pairs)
    assert result.exit_code == 2 and "metadata" in result.stderr
    assert fresh_sandbox.state.request_count == 0


def test_agent_needs_a_user(cli: Cli, fresh_sandbox, monkeypatch) -> None:
    point_at(monkeypatch, fresh_sandbox)
    result = cli("threads", "create", "--agent", "Helper")
    assert result.exit_code == 2 and "--user" in result.stderr
    not_uuid = cli("threads", "create", "--agent", "Helper", "--user", "bob")
    assert not_uuid.exit_code == 2 and "not a UUID" in not_uuid.stderr
    assert fresh_sandbox.state.request_count == 0


def test_agent_without_a_store_configured_says_the_conversation_is_not_recorded(
    cli: Cli, gateway_env
) -> None:
    result = cli(
        "threads",
        "create",
        "--agent",
        "Helper",
        "--user",
        "6f1c1f9e-3c1a-4c8e-9a7e-0d2a1b3c4d5e",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"].startswith("thread_")
    assert "the conversation was not recorded: no remote store is configured" in result.stderr


# -- the store's mirror (agents, conversations, messages) on the real Postgres ---------------


def test_a_configured_store_mirrors_agents_conversations_and_messages(
    cli: Cli,
    gateway_env,
    remote_env: str,
    auth_user: str,
) -> None:
    assistant = ok_json(
        cli,
        "assistants",
        "create",
        "--model",
        "gpt-4o",
        "--name",
        "Helper",
        "--instructions",
        "Be kind.",
    )
    made = ok_json(
        cli,
        "threads",
        "create",
        "--agent",
        "Helper",
        "--user",
        auth_user,
        "--message",
        "hello",
    )
    thread_id = made["id"]
    ok_json(cli, "messages", "create", thread_id, "--content", "tell me more")
    outcome = ok_json(cli, "runs", "create", thread_id, "--assistant", assistant["id"], "--wait")
    reply = outcome["messages"][0]

    with psycopg.connect(remote_env) as conn:
        agents = conn.execute(
            "SELECT id, name, openai_assistant_id, instructions, model FROM agents"
        )
        (agent,) = agents.fetchall()
        assert agent[1:] == ("Helper", assistant["id"], "Be kind.", "gpt-4o")
        conversation = conn.execute(
            "SELECT agent_id, user_id::text FROM conversations WHERE openai_thread_id = %s",
            (thread_id,),
        ).fetchone()
        assert conversation == (agent[0], auth_user)
        messages = conn.execute(
            "SELECT role, content, openai_message_id FROM messages ORDER BY created_at, content"
        ).fetchall()
    assert [(role, content) for role, content, _ in messages] == [
        ("user", "hello"),
        ("user", "tell me more"),
        ("assistant", "You said: tell me more"),
    ]
    assert messages[-1][2] == reply["id"]


def test_an_unknown_agent_is_refused_before_the_thread_is_created(
    cli: Cli,
    fresh_sandbox,
    monkeypatch,
    remote_env: str,
    auth_user: str,
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    result = cli("threads", "create", "--agent", "Nobody", "--user", auth_user)
    assert result.exit_code == 2 and "no agent 'Nobody'" in result.stderr
    assert fresh_sandbox.state.threads.items == {}
