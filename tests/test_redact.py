"""Redaction: each kind of secret, what must survive, and planted secrets never stored."""

from __future__ import annotations

import contextlib
import json
import random
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aigw.errors import ConfigError
from aigw.gateway.client import Gateway
from aigw.redact import MARK, Redactor
from aigw.sandbox import Sandbox
from aigw.settings import Settings
from aigw.storage import open_repository, open_state
from aigw.storage.base import LogFilter
from aigw.storage.call_log import CallLog
from tests.helpers.cli import Cli


def luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char)
        if index % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def cpf_digits(body: str) -> str:
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(body, range(size + 1, 1, -1), strict=False))
        body += str((total * 10 % 11) % 10)
    return body


def cnpj_digits(body: str) -> str:
    weights = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    for size in (12, 13):
        w = weights if size == 12 else [6, *weights]
        remainder = sum(int(d) * x for d, x in zip(body, w, strict=False)) % 11
        body += str(0 if remainder < 2 else 11 - remainder)
    return body


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("key sk-proj-Abc123def456GHI789", "key"),
        ("gateway vkey-0123456789abcdef", "key"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig_nature-1", "jwt"),
        ("Authorization: Bearer abcdefghij0123456789", "bearer"),
        ("write to maria.silva+tag@empresa.com.br today", "email"),
        ("call +55 11 98765-4321 now", "phone"),
        ("call (11) 98765-4321 now", "phone"),
        ("call +14155552671 now", "phone"),
        ("card 4111 1111 1111 1111 ok", "card"),
        ("card 5500-0000-0000-0004 ok", "card"),
        ("cpf 529.982.247-25 ok", "cpf"),
        ("cpf 52998224725 ok", "cpf"),
        ("cnpj 11.222.333/0001-81 ok", "cnpj"),
        ("cnpj 11222333000181 ok", "cnpj"),
    ],
)
def test_each_kind_of_secret_becomes_its_marker(text: str, kind: str) -> None:
    redacted = Redactor().text(text)
    assert f"[REDACTED:{kind}]" in redacted
    assert redacted.split()[0] == text.split()[0]  # the words around it stay


@pytest.mark.parametrize(
    "text",
    [
        "card 4111111111111112 fails Luhn",
        "cpf 529.982.247-26 has a wrong check digit",
        "cnpj 11.222.333/0001-82 has a wrong check digit",
        "created at 1700000000 by run_abc123",
        "a task-management-tool and risk-assessment-notes",
        "version 2024-01-15 at 12:30:45",
    ],
)
def test_look_alikes_that_are_not_secrets_stay(text: str) -> None:
    assert Redactor().text(text) == text


def test_fields_named_like_secrets_are_redacted_anywhere_and_usage_is_kept() -> None:
    payload = {
        "headers": {"Authorization": "x", "x-api-key": "y", "Cookie": "z"},
        "items": [{"password": "hunter2", "client_secret": "s", "access_token": "t"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        "max_prompt_tokens": 500,
        "created_at": 1700000000,
        "nested_json": json.dumps({"api_key": "inner", "note": "mail a@b.co"}),
    }
    clean = Redactor().value(payload)
    assert clean["headers"] == {"Authorization": MARK, "x-api-key": MARK, "Cookie": MARK}
    assert clean["items"] == [{"password": MARK, "client_secret": MARK, "access_token": MARK}]
    assert clean["usage"] == payload["usage"]
    assert clean["max_prompt_tokens"] == 500 and clean["created_at"] == 1700000000
    assert json.loads(clean["nested_json"]) == {"api_key": MARK, "note": "mail [REDACTED:email]"}


def test_configured_secrets_and_user_patterns_are_redacted() -> None:
    redactor = Redactor([r"ACME-\d{6}"], secrets=["my-gateway-key-42"])
    assert redactor.text("id ACME-123456 with my-gateway-key-42") == (
        "id [REDACTED:pattern] with [REDACTED:secret]"
    )


def test_a_bad_user_pattern_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="AIGW_REDACT_PATTERNS"):
        Redactor(["(unclosed"])


def test_a_payload_over_the_cap_is_truncated_with_a_marker() -> None:
    redactor = Redactor(max_bytes=300)
    stored = redactor.payload({"text": "x" * 1000, "mail": "joe@example.com"})
    assert stored["aigw_truncated"] > 1000
    assert len(stored["head"].encode()) <= 300
    small = {"text": "short"}
    assert redactor.payload(small) == small


# -- property: planted secrets never reach a stored row, the WAL or the console -------

AROUND = st.text(alphabet=string.ascii_letters + string.digits + " .,:;!?-_", max_size=20)


@st.composite
def secrets(draw: st.DrawFn) -> tuple[str, str]:
    """(kind, secret text) for one of the kinds the issue lists."""
    digits = st.text(alphabet=string.digits, min_size=1, max_size=1)

    def nums(n: int) -> str:
        return "".join(draw(digits) for _ in range(n))

    alnum = string.ascii_letters + string.digits
    kind = draw(
        st.sampled_from(
            ["openai", "vkey", "jwt", "bearer", "email", "phone", "card", "cpf", "cnpj"]
        )
    )
    word = st.text(alphabet=alnum, min_size=12, max_size=40)
    if kind == "openai":
        return kind, "sk-proj-" + draw(word)
    if kind == "vkey":
        return kind, "vkey-" + draw(word)
    if kind == "jwt":
        b64 = st.text(alphabet=alnum + "-_", min_size=8, max_size=30)
        return kind, "eyJ" + draw(b64) + "." + draw(b64) + "." + draw(b64)
    if kind == "bearer":
        return kind, "Bearer " + draw(word)
    if kind == "email":
        lower = st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=10)
        return kind, f"{draw(lower)}.{draw(lower)}@{draw(lower)}.com"
    if kind == "phone":
        style = draw(st.sampled_from(["+55 11 9{}-{}", "(11) 9{}-{}", "+1 415 {}-{}"]))
        return kind, style.format(nums(4), nums(4))
    if kind == "card":
        prefix = draw(st.sampled_from(["4", "51", "37", "6011"]))
        body = prefix + nums(15 - len(prefix))
        number = body + luhn_digit(body)
        spaced = draw(st.booleans())
        return kind, " ".join(number[i : i + 4] for i in range(0, 16, 4)) if spaced else number
    if kind == "cpf":
        # One digit eleven times passes the check digits but is no CPF (the redactor agrees).
        d = cpf_digits(
            draw(
                st.text(alphabet=string.digits, min_size=9, max_size=9).filter(
                    lambda body: len(set(body)) > 1
                )
            )
        )
        formatted = f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"
        return kind, formatted if draw(st.booleans()) else d
    d = cnpj_digits(nums(12))
    formatted = f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"
    return kind, formatted if draw(st.booleans()) else d


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 10**6) | st.text(max_size=15),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def plant(payload: Any, text: str, rng: random.Random, as_key: bool) -> Any:
    """`payload` with `text` put at a random place: a new value or key, maybe nested deeper."""
    if isinstance(payload, dict) and payload and rng.random() < 0.6:
        key = rng.choice(list(payload))
        return {**payload, key: plant(payload[key], text, rng, as_key)}
    if isinstance(payload, list) and payload and rng.random() < 0.6:
        index = rng.randrange(len(payload))
        return [*payload[:index], plant(payload[index], text, rng, as_key), *payload[index + 1 :]]
    if rng.random() < 0.2:  # as JSON text inside a string
        return json.dumps({"note": text})
    return {text: 1} if as_key else {"field": text, "other": payload}


def needles(kind: str, secret: str) -> list[str]:
    """The strings that must not appear: the secret, and the digits of a number."""
    found = [secret.removeprefix("Bearer ")]
    if kind in ("card", "cpf", "cnpj", "phone"):
        found.append("".join(c for c in secret if c.isdigit()))
    return found


@settings(max_examples=300, deadline=None)
@given(payload=JSON, planted=secrets(), before=AROUND, after=AROUND, seed=st.integers(0, 10**6))
def test_planted_secrets_never_survive_redaction(
    payload: Any, planted: tuple[str, str], before: str, after: str, seed: int
) -> None:
    kind, secret = planted
    rest = before + after + json.dumps(payload)
    assume(not any(needle in rest for needle in needles(kind, secret)))  # it is the only copy
    rng = random.Random(seed)
    dirty = plant(payload, f"{before} {secret} {after}", rng, as_key=rng.random() < 0.3)
    stored = json.dumps(Redactor(max_bytes=512).payload(dirty), ensure_ascii=False)
    for needle in needles(kind, secret):
        assert needle not in stored


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(payload=JSON, planted=secrets(), seed=st.integers(0, 10**6))
def test_planted_secrets_never_reach_the_local_store_or_its_write_ahead_log(
    sandbox: Sandbox, payload: Any, planted: tuple[str, str], seed: int
) -> None:
    kind, secret = planted
    assume(not any(needle in json.dumps(payload) for needle in needles(kind, secret)))
    rng = random.Random(seed)
    body = {"model": "gpt-4o", "metadata": plant(payload, f"see {secret} here", rng, False)}
    with tempfile.TemporaryDirectory() as home:
        settings_ = Settings(
            home=Path(home),
            ai_gateway_url=sandbox.url,
            gateway_api_key="gk-test",
            openai_api_key="sk-test-0000000000000000abcd",
            log_payloads=True,
            cache_ttl=0,
            max_retries=0,
        )
        store = open_repository(settings_)
        gateway = Gateway(settings_, state=open_state(settings_), log=CallLog(lambda: store))
        # The sandbox may refuse random metadata: the row is logged all the same.
        with contextlib.suppress(Exception):
            gateway.client.post("/assistants", body=body, cast_to=object)
        # The row's first stop on disk is the store's write-ahead log: read it before close.
        in_wal = b"".join(p.read_bytes() for p in Path(home).iterdir() if p.is_file())
        gateway.close()
        [row] = store.records(LogFilter())
        assert row.request_payload is not None
        store.close()
        on_disk = b"".join(p.read_bytes() for p in Path(home).iterdir() if p.is_file())
        on_disk += in_wal
    for needle in needles(kind, secret):
        assert needle.encode() not in on_disk


def test_secrets_stay_out_of_stored_rows_and_the_console_of_a_command(
    cli: Cli, gateway_env: Sandbox, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGW_LOG_PAYLOADS", "true")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:pw-SECRET-1@127.0.0.1:1/x")
    # An update of an unknown assistant: the payload is sent and logged, the API says 404,
    # and the unreachable remote adds its warning to the console.
    result = cli(
        "assistants",
        "update",
        "asst_unknown",
        "--instructions",
        "Reach joe@example.com, card 4111111111111111, key sk-proj-AAAABBBBCCCCDDDD",
    )
    assert result.exit_code == 1 and "pending sync" in result.stderr
    for secret in ("joe@example.com", "4111111111111111", "sk-proj-AAAABBBB", "pw-SECRET-1"):
        assert secret not in result.stderr
    on_disk = b"".join(p.read_bytes() for p in isolated_env.iterdir() if p.is_file())
    for secret in (b"joe@example.com", b"4111111111111111", b"sk-proj-AAAABBBB", b"gk-test"):
        assert secret not in on_disk
    assert b"sk-test-0000000000000000abcd" not in on_disk
