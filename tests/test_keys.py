"""Key rotation: a revoked gateway key gives way to the next, remembered by fingerprint."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from aigw.gateway.policies.keys import labelled_keys
from aigw.sandbox import Sandbox, SandboxOptions
from tests.helpers.cli import point_at
from tests.helpers.processes import admin, aigw_process
from tests.helpers.rows import log_rows

OLD, NEW = "gk-old-key-0000000001", "gk-new-key-0000000002"


@pytest.fixture
def two_keys(monkeypatch) -> Iterator[Sandbox]:
    """A sandbox accepting both keys; aigw configured with the old one first."""
    server = Sandbox(SandboxOptions(gateway_keys=[OLD, NEW])).start()
    point_at(monkeypatch, server, gateway_key=OLD)
    monkeypatch.setenv("GATEWAY_API_KEY_NEXT", NEW)
    yield server
    server.stop()


def test_a_revoked_key_rotates_to_the_next_which_is_remembered(
    two_keys: Sandbox, isolated_env
) -> None:
    admin(two_keys, "POST", "/__sandbox/keys/revoke", {"key": OLD})

    first = aigw_process("assistants", "list", "--json")

    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout) == []
    assert "GATEWAY_API_KEY_NEXT works" in first.stderr and "promote it" in first.stderr
    rows = log_rows(isolated_env)
    assert [(r.attempt, r.status_code) for r in rows] == [(1, 401), (2, 200)]
    assert len({r.call_id for r in rows}) == 1

    second = aigw_process("assistants", "get", "asst_missing000000000000000", "--json")

    assert "promote" not in second.stderr  # said once
    assert [r.status_code for r in log_rows(isolated_env)][2:] == [404]  # straight to NEW
    for text in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert OLD not in text and NEW not in text
    raw = (isolated_env / "aigw.sqlite3").read_bytes()
    assert OLD.encode() not in raw and NEW.encode() not in raw


def test_when_every_key_is_refused_the_401_stands(two_keys: Sandbox) -> None:
    admin(two_keys, "POST", "/__sandbox/keys/revoke", {"key": OLD})
    admin(two_keys, "POST", "/__sandbox/keys/revoke", {"key": NEW})

    result = aigw_process("assistants", "list")

    assert result.exit_code == 1 and "401" in result.stderr
    assert two_keys.faults.requests_seen == 2


def test_without_rotation_the_first_key_is_used_and_nothing_is_said(two_keys: Sandbox) -> None:
    result = aigw_process("assistants", "list", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    assert two_keys.faults.requests_seen == 1


def test_keys_come_in_rotation_order_with_their_variable_names() -> None:
    keys = labelled_keys("a", "b", "c, a ,d")
    assert [(k.value, k.label) for k in keys] == [
        ("a", "GATEWAY_API_KEY"),
        ("b", "GATEWAY_API_KEY_NEXT"),
        ("c", "GATEWAY_API_KEYS item 1"),
        ("d", "GATEWAY_API_KEYS item 3"),
    ]
