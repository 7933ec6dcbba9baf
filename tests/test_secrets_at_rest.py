"""Secrets never leave for another host and never rest in clear: URLs are masked wherever they
are shown, the local store is private to its user, the cache keeps nothing a redactor would
remove, and the log's `path` is redacted like a payload.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from aigw.sandbox import Sandbox
from aigw.settings import mask_url
from aigw.storage.state import SQLiteState
from tests.helpers.cli import Cli, point_at
from tests.helpers.rows import log_rows

URL_WITH_SECRETS = "http://operator:pa55word-x@127.0.0.1:9/v1?key=query-secret-1&v=2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL_WITH_SECRETS, "http://****@127.0.0.1:9/v1?key=****&v=****"),
        ("https://tok-123@gw.test/v1", "https://****@gw.test/v1"),
        (
            "postgresql://postgres:pw@db:5432/app?sslmode=require",
            "postgresql://postgres:****@db:5432/app?sslmode=****",
        ),
        ("host=db password=pw user=u", "host=db password=**** user=u"),
        ("https://gw.test/v1", "https://gw.test/v1"),
        ("http://[::1/v1?k=v", "http://[::1/v1?k=****"),
    ],
)
def test_one_function_masks_every_kind_of_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    "args",
    [("config", "show"), ("config", "show", "--json"), ("doctor",), ("assistants", "list")],
)
def test_credentials_in_the_gateway_url_are_never_printed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("AI_GATEWAY_URL", URL_WITH_SECRETS)
    monkeypatch.setenv("GATEWAY_API_KEY", "vkey-test-0000000000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000abcd")
    monkeypatch.setenv("AIGW_MAX_RETRIES", "0")

    result = cli(*args)

    shown = result.stdout + result.stderr
    assert "127.0.0.1:9" in shown  # the URL is shown…
    assert "pa55word" not in shown and "query-secret" not in shown  # …masked


def test_the_local_store_is_private_to_its_user(
    cli: Cli, gateway_env: Sandbox, isolated_env: Path
) -> None:
    assert cli("assistants", "list").exit_code == 0

    assert stat.S_IMODE(isolated_env.stat().st_mode) == 0o700
    files = [p for p in isolated_env.rglob("*") if p.is_file()]
    assert any(p.name == "aigw.sqlite3" for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_a_store_left_readable_by_an_older_aigw_is_narrowed(isolated_env: Path) -> None:
    isolated_env.mkdir(parents=True)
    store = isolated_env / "aigw.sqlite3"
    SQLiteState(store).close()
    store.chmod(0o644)

    SQLiteState(store).close()

    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_the_cache_keeps_no_answer_with_anything_to_redact(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    point_at(monkeypatch, fresh_sandbox)  # its own: the session sandbox must stay cacheable
    secret = "contact ana@example.com, key sk-live-abcdefghijklmnop"
    made = cli("assistants", "create", "--model", "gpt-4o", "--instructions", secret, "--json")
    plain = cli("assistants", "create", "--model", "gpt-4o", "--name", "plain", "--json")
    secret_id = json.loads(made.stdout)["id"]
    plain_id = json.loads(plain.stdout)["id"]

    assert cli("assistants", "get", secret_id).exit_code == 0
    assert cli("assistants", "get", plain_id).exit_code == 0
    again = cli("assistants", "get", secret_id, "--json")

    raw = b"".join(p.read_bytes() for p in isolated_env.rglob("aigw.sqlite3*"))
    assert b"ana@example.com" not in raw and b"sk-live-abcdefghijklmnop" not in raw
    assert json.loads(again.stdout)["instructions"] == secret  # the answer itself is intact
    gets = [r.cache_status for r in log_rows(isolated_env) if r.method == "GET"]
    assert gets == ["miss", "miss", "miss"]  # the plain one was cached, the other never
    assert cli("assistants", "get", plain_id).exit_code == 0
    assert log_rows(isolated_env)[-1].cache_status == "hit"


def test_no_cache_stores_nothing(cli: Cli, gateway_env: Sandbox, isolated_env: Path) -> None:
    assert cli("assistants", "list", "--no-cache").exit_code == 0
    assert cli("assistants", "list").exit_code == 0

    assert [r.cache_status for r in log_rows(isolated_env)] == ["bypass", "miss"]


def test_an_answer_over_the_entry_cap_is_not_cached(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    from aigw.gateway.policies.cache import MAX_ENTRY_BYTES

    point_at(monkeypatch, fresh_sandbox)
    made = cli("assistants", "create", "--model", "gpt-4o", "--instructions", "x" * 200_000)
    assert made.exit_code == 0, made.stderr
    for _ in range(6):
        cli("assistants", "create", "--model", "gpt-4o", "--instructions", "y" * 200_000)

    first = cli("assistants", "list", "--limit", "10", "--json")
    second = cli("assistants", "list", "--limit", "10", "--json")

    assert first.exit_code == second.exit_code == 0
    assert len(first.stdout) > MAX_ENTRY_BYTES
    lists = [r.cache_status for r in log_rows(isolated_env) if r.method == "GET"]
    assert lists == ["miss", "miss"]


def test_an_id_is_redacted_in_the_log_path_like_a_payload(
    cli: Cli, gateway_env: Sandbox, isolated_env: Path
) -> None:
    result = cli("threads", "get", "thread_ana.souza@example.com")

    assert result.exit_code != 0
    (row,) = log_rows(isolated_env)
    assert row.path is not None and row.path.endswith("[REDACTED:email]")
    assert "example.com" not in str(row)


def test_a_database_url_whose_password_holds_an_at_sign_is_described_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aigw.settings import load_settings
    from aigw.storage import remote_label
    from aigw.storage.postgres import describe_url

    # libpq would read "ss@db.example" as the host; the password's tail must not show.
    assert describe_url("postgresql://app:p@ss@db.example:6543/prod") == "app@db.example:6543/prod"
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://app:pw@db.example/prod?pgbouncer=true")
    assert remote_label(load_settings()) == "Postgres at app@db.example:5432/prod"
