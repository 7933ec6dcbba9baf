"""A successful upstream write is never reported as a failure: what can be checked is checked
before the call (nothing is created when it fails), and what is recorded after it goes through
the local store and sync — or, if even that fails, the command still prints what it created,
exits 0 and says what was not recorded and how to repair it. Real parts: the sandbox over HTTP,
the real Postgres (and a port where none listens), a store file made read-only for real."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from aigw.cli import app
from aigw.context import AppContext
from aigw.gateway.http import BaseTransport, HTTPTransport, Request, Response
from aigw.sandbox import Sandbox
from tests.helpers.cli import Cli, ok_json, point_at

DOWN_URL = "postgresql://postgres@127.0.0.1:1/nothing"  # a port where no database listens


def agents(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT openai_assistant_id, name FROM agents ORDER BY name").fetchall()


def assistant_count(sandbox: Sandbox) -> int:
    return len(sandbox.state.assistants.values())


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Files no process may write, not even root (immutable), for the block's duration."""
    present = [p for p in paths if p.exists()]
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", *map(str, present)], check=True)
    else:
        for path in present:
            path.chmod(0o444)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *map(str, present)], check=True)
        else:
            for path in present:
                path.chmod(0o644)


def store_files(home: Path) -> list[Path]:
    return [home / "aigw.sqlite3", home / "aigw.sqlite3-wal"]


def test_creates_while_the_database_is_down_succeed_and_their_agents_rows_follow(
    cli: Cli, fresh_sandbox: Sandbox, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    monkeypatch.setenv("DATABASE_URL", DOWN_URL)
    made = []
    for count, name in enumerate(("one", "two", "three"), start=1):
        result = cli("assistants", "create", "--model", "gpt-4o", "--name", name, "--json")
        assert result.exit_code == 0, result.stderr
        made.append(json.loads(result.stdout)["id"])
        assert f"{count} mirror rows (agents, conversations…) pending sync" in result.stderr
    assert assistant_count(fresh_sandbox) == 3

    monkeypatch.setenv("DATABASE_URL", migrated_db)  # the database is back
    synced = json.loads(cli("logs", "sync", "--json").stdout)
    assert (synced["mirror_synced"], synced["mirror_pending"]) == (3, 0)
    assert sorted(agents(migrated_db)) == sorted(zip(made, ("one", "two", "three"), strict=True))
    assert json.loads(cli("logs", "sync", "--json").stdout)["mirror_synced"] == 0
    assert len(agents(migrated_db)) == 3


def test_a_create_with_a_read_only_store_fails_before_anything_is_created(
    cli: Cli, fresh_sandbox: Sandbox, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    assert cli("assistants", "list").exit_code == 0  # the store exists
    seen = fresh_sandbox.faults.requests_seen
    with read_only(isolated_env / "aigw.sqlite3"):
        result = cli("assistants", "create", "--model", "gpt-4o")
    assert result.exit_code == 3, result.stderr
    assert "does not take writes" in result.stderr and "nothing was sent" in result.stderr
    assert result.stdout == ""
    assert fresh_sandbox.faults.requests_seen == seen and assistant_count(fresh_sandbox) == 0


def test_a_read_only_store_still_serves_reads_and_warns_that_the_log_row_was_not_saved(
    cli: Cli, fresh_sandbox: Sandbox, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    made = ok_json(cli, "assistants", "create", "--model", "gpt-4o")
    with read_only(*store_files(isolated_env)):
        listed = cli("assistants", "list", "--no-cache", "--json")
        logs = cli("logs", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [a["id"] for a in json.loads(listed.stdout)] == [made["id"]]
    assert "1 log rows could not be saved" in listed.stderr and "readonly" in listed.stderr
    assert logs.exit_code == 0  # the create's row is read; the list's could not be saved
    assert [r["method"] for r in json.loads(logs.stdout)] == ["POST"]


@contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """A folder in which no process may create or remove a file, not even root."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    else:
        folder.chmod(0o500)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o700)


def test_a_read_only_store_folder_is_exit_3_for_every_command_and_nothing_is_sent(
    cli: Cli, fresh_sandbox: Sandbox, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    assert cli("assistants", "list").exit_code == 0  # the store exists
    seen = fresh_sandbox.faults.requests_seen
    with read_only_folder(isolated_env):  # SQLite cannot make its -wal and -shm files there
        results = [
            cli("assistants", "create", "--model", "gpt-4o"),
            cli("assistants", "list", "--no-cache"),
            cli("logs", "list"),
        ]
    for result in results:
        assert result.exit_code == 3, result.stderr
        assert result.stdout == ""
        assert f"cannot open the local store {isolated_env / 'aigw.sqlite3'}" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 2
    assert fresh_sandbox.faults.requests_seen == seen and assistant_count(fresh_sandbox) == 0


def test_a_thread_for_a_user_not_in_auth_users_is_refused_before_it_is_created(
    cli: Cli, fresh_sandbox: Sandbox, remote_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    made = cli("assistants", "create", "--model", "gpt-4o", "--name", "Helper")
    assert made.exit_code == 0, made.stderr
    threads_before = len(fresh_sandbox.state.threads.values())
    stranger = str(uuid.uuid4())
    result = cli("threads", "create", "--agent", "Helper", "--user", stranger)
    assert result.exit_code == 2
    assert f"no user {stranger} in auth.users" in result.stderr and result.stdout == ""
    assert len(fresh_sandbox.state.threads.values()) == threads_before
    with psycopg.connect(remote_env) as conn:
        assert conn.execute("SELECT count(*) FROM conversations").fetchone() == (0,)


class StoreFailsAfterTheAnswer(BaseTransport):
    """The network, then — once a POST is answered — the local store's files turn read-only
    (as a disk filling up mid-command would leave them)."""

    def __init__(self, home: Path):
        self.inner = HTTPTransport()
        self.home = home
        self.locked: list[Path] = []

    def handle_request(self, request: Request) -> Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and not self.locked:  # the first answered write
            self.locked = [p for p in store_files(self.home) if p.exists()]
            subprocess.run(["chattr", "+i", *map(str, self.locked)], check=True)
        return response

    def unlock(self) -> None:
        if self.locked:
            subprocess.run(["chattr", "-i", *map(str, self.locked)], check=True)
        self.locked = [self.home]  # unlocked for good: no later POST locks again

    def close(self) -> None:
        self.inner.close()


class FailingStoreContext(AppContext):
    def __init__(self, network: StoreFailsAfterTheAnswer):
        super().__init__()
        self.network = network

    @cached_property
    def gateway(self):  # type: ignore[override]
        from aigw.gateway.client import Gateway

        return Gateway(
            self.settings,
            log=self.call_log,
            options=self.command_options,
            state=self.state,
            network=self.network,
        )


@pytest.fixture
def store_fails_after_the_answer(
    cli: Cli, fresh_sandbox: Sandbox, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StoreFailsAfterTheAnswer]:
    if os.geteuid() != 0:
        pytest.skip("making an open file read-only for its writer needs root (chattr +i)")
    point_at(monkeypatch, fresh_sandbox)
    assert cli("assistants", "list").exit_code == 0  # the store exists, with its WAL
    network = StoreFailsAfterTheAnswer(isolated_env)
    yield network
    network.unlock()


def create_with(network: StoreFailsAfterTheAnswer, *args: str):
    context = FailingStoreContext(network)
    return CliRunner().invoke(app, list(args), obj=context, catch_exceptions=False)


def test_a_store_that_fails_after_the_call_still_prints_the_object_and_exits_0(
    store_fails_after_the_answer: StoreFailsAfterTheAnswer,
    fresh_sandbox: Sandbox,
    remote_env: str,
) -> None:
    result = create_with(
        store_fails_after_the_answer,
        "assistants",
        "create",
        "--model",
        "gpt-4o",
        "--name",
        "X",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    assert assistant_count(fresh_sandbox) == 1 and created["name"] == "X"
    assert "the cache could not drop its copies" in result.stderr
    assert agents(remote_env) == [(created["id"], "X")]  # written to the remote store directly


def test_when_nothing_can_record_it_the_warning_says_how_to_repair_and_the_repair_works(
    store_fails_after_the_answer: StoreFailsAfterTheAnswer,
    fresh_sandbox: Sandbox,
    migrated_db: str,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", DOWN_URL)
    result = create_with(
        store_fails_after_the_answer,
        "assistants",
        "create",
        "--model",
        "gpt-4o",
        "--name",
        "Y",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    repair = f"aigw assistants update {created['id']} --name 'Y'"
    assert f"the agents row of {created['id']} was not recorded" in result.stderr
    assert repair in result.stderr

    store_fails_after_the_answer.unlock()
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    fixed = cli(*repair.replace("'", "").split()[1:])
    assert fixed.exit_code == 0, fixed.stderr
    assert agents(migrated_db) == [(created["id"], "Y")]
