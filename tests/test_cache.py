"""The response cache: kept in the local store, shared by processes, dropped by writes."""

from __future__ import annotations

import json

import pytest

from aigw.gateway.policies.cache import invalidated_by, max_age_of, resource_tag
from aigw.sandbox import Sandbox
from tests.helpers.cli import Cli, point_at
from tests.helpers.processes import aigw_process
from tests.helpers.rows import log_rows


@pytest.fixture
def upstream(fresh_sandbox: Sandbox, monkeypatch) -> Sandbox:
    point_at(monkeypatch, fresh_sandbox)
    return fresh_sandbox


def create(cli: Cli, name: str) -> str:
    made = cli("assistants", "create", "--model", "gpt-4o", "--name", name, "--json")
    assert made.exit_code == 0, made.stderr
    return str(json.loads(made.stdout)["id"])


def test_a_cached_list_is_served_to_a_second_process_without_a_request(
    cli: Cli, upstream: Sandbox, isolated_env
) -> None:
    made = create(cli, "cached")
    before = upstream.faults.requests_seen

    first = aigw_process("assistants", "list", "--json")
    second = aigw_process("assistants", "list", "--json")

    assert first.exit_code == second.exit_code == 0
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert [a["id"] for a in json.loads(second.stdout)] == [made]
    assert upstream.faults.requests_seen == before + 1
    lists = [r for r in log_rows(isolated_env) if r.method == "GET"]
    assert [(r.cache_status, r.status_code) for r in lists] == [("miss", 200), ("hit", 200)]


def test_an_update_invalidates_the_list_and_the_assistant(cli: Cli, upstream: Sandbox) -> None:
    made = create(cli, "before")
    assert cli("assistants", "get", made, "--json").exit_code == 0
    assert cli("assistants", "list", "--json").exit_code == 0

    assert cli("assistants", "update", made, "--name", "after").exit_code == 0

    got = aigw_process("assistants", "get", made, "--json")
    listed = aigw_process("assistants", "list", "--json")
    assert json.loads(got.stdout)["name"] == "after"
    assert json.loads(listed.stdout)[0]["name"] == "after"


def test_creating_and_deleting_an_assistant_drop_the_cached_list(
    cli: Cli, upstream: Sandbox
) -> None:
    first = create(cli, "one")
    assert len(json.loads(cli("assistants", "list", "--json").stdout)) == 1
    second = create(cli, "two")
    assert len(json.loads(cli("assistants", "list", "--json").stdout)) == 2
    assert cli("assistants", "delete", second, "--yes").exit_code == 0
    listed = json.loads(cli("assistants", "list", "--json").stdout)
    assert [a["id"] for a in listed] == [first]


def test_a_thread_is_cached_and_dropped_by_its_update(
    cli: Cli, upstream: Sandbox, isolated_env
) -> None:
    made = cli("threads", "create", "--metadata", "v=1", "--json")
    thread_id = json.loads(made.stdout)["id"]
    assert cli("threads", "get", thread_id, "--json").exit_code == 0
    assert cli("threads", "get", thread_id, "--json").exit_code == 0
    assert cli("threads", "update", thread_id, "--metadata", "v=2", "--json").exit_code == 0

    got = cli("threads", "get", thread_id, "--json")

    assert json.loads(got.stdout)["metadata"] == {"v": "2"}
    gets = [r.cache_status for r in log_rows(isolated_env) if r.method == "GET"]
    assert gets == ["miss", "hit", "miss"]


def test_no_cache_bypasses_the_read_and_max_age_bounds_the_age(
    cli: Cli, upstream: Sandbox, isolated_env
) -> None:
    assert cli("assistants", "list").exit_code == 0
    assert cli("assistants", "list", "--no-cache").exit_code == 0
    assert cli("assistants", "list", "--max-age", "0s").exit_code == 0
    assert cli("assistants", "list", "--max-age", "5m").exit_code == 0

    statuses = [r.cache_status for r in log_rows(isolated_env)]
    assert statuses == ["miss", "bypass", "bypass", "hit"]
    assert upstream.faults.requests_seen == 3


def test_a_bad_max_age_is_a_usage_error(cli: Cli, upstream: Sandbox) -> None:
    result = cli("assistants", "list", "--max-age", "soon")
    assert result.exit_code == 2 and "--max-age" in result.stderr


def test_two_identities_never_share_an_entry(cli: Cli, upstream: Sandbox, monkeypatch) -> None:
    assert cli("assistants", "list").exit_code == 0
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-other-identity-0000wxyz")
    assert cli("assistants", "list").exit_code == 0
    assert upstream.faults.requests_seen == 2


def test_errors_are_never_cached(cli: Cli, upstream: Sandbox) -> None:
    upstream.faults.add("GET /v1/assistants 404 x1")
    assert cli("assistants", "list").exit_code == 1
    assert cli("assistants", "list").exit_code == 0
    assert upstream.faults.requests_seen == 2


def test_verbose_shows_the_age_of_a_hit(cli: Cli, upstream: Sandbox) -> None:
    miss = cli("assistants", "list", "--verbose")
    hit = cli("assistants", "list", "--verbose")
    assert "cache miss: GET /v1/assistants" in miss.stderr
    assert "cache hit: GET /v1/assistants" in hit.stderr and " s old)" in hit.stderr


def test_the_cache_key_stores_no_credential(cli: Cli, upstream: Sandbox, isolated_env) -> None:
    assert cli("assistants", "list").exit_code == 0
    raw = (isolated_env / "aigw.sqlite3").read_bytes()
    assert b"gk-test" not in raw and b"sk-test-0000" not in raw


def test_only_the_seed_s_three_reads_are_cacheable() -> None:
    assert resource_tag("/v1/assistants") == "assistants"
    assert resource_tag("/v1/assistants/asst_1") == "assistant:asst_1"
    assert resource_tag("/v1/threads/thread_1") == "thread:thread_1"
    for path in (
        "/v1/threads/thread_1/messages",
        "/v1/threads/thread_1/runs",
        "/v1/threads/thread_1/runs/run_1",
        "/v1/threads/runs",
        "/v1/threads/thread_1/runs/run_1/steps",
    ):
        assert resource_tag(path) is None, path
    assert invalidated_by("POST", "/v1/assistants") == ["assistants"]
    assert invalidated_by("DELETE", "/v1/assistants/asst_1") == ["assistants", "assistant:asst_1"]
    assert invalidated_by("POST", "/v1/threads/thread_1") == ["thread:thread_1"]
    assert invalidated_by("POST", "/v1/threads") == []


def test_cache_control_in_the_request_sets_the_age_or_skips_the_cache() -> None:
    assert max_age_of("max-age=300") == (300.0, False)
    assert max_age_of("no-cache") == (None, True)
    assert max_age_of(None) == (None, False)
