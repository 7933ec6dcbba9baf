"""A hostile or broken upstream: redirects elsewhere, trickles, never stops, bombs, lies.

Each test runs the real command line against a small malicious server (tests/hostile_upstream.py)
over real HTTP, and checks the exit code, the one-line error and the log row.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import Cli
from tests.helpers.hostile import Handler, Hostile, endless, start
from tests.helpers.rows import log_rows

ASSISTANT = json.dumps(
    {
        "id": "asst_1",
        "object": "assistant",
        "created_at": 1,
        "model": "gpt-4o",
        "name": "a",
        "description": None,
        "instructions": None,
        "tools": [],
        "metadata": {},
    }
).encode()
LISTING = json.dumps(
    {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
).encode()

Start = Callable[[Callable[[Handler], None]], Hostile]


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """Start hostile servers; the first one started is the configured gateway."""
    stops: list[Callable[[], None]] = []

    def make(answer: Callable[[Handler], None]) -> Hostile:
        hostile, stop = start(answer)
        stops.append(stop)
        if len(stops) == 1:
            monkeypatch.setenv("AI_GATEWAY_URL", hostile.url)
            monkeypatch.setenv("GATEWAY_API_KEY", "vkey-secret-gateway-key-0001")
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000abcd")
            monkeypatch.setenv("AIGW_MAX_RETRIES", "0")
        return hostile

    yield make
    for stop in stops:
        stop()


# -- §1 redirects -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_host_is_refused_and_nothing_reaches_that_host(
    upstream: Start, cli: Cli, isolated_env: Path, status: int
) -> None:
    target: list[str] = []
    gateway = upstream(lambda h: h.json(status, b"{}", location=target[0]))
    elsewhere = upstream(lambda h: h.json(200, ASSISTANT))
    target.append(elsewhere.url.replace("127.0.0.1", "localhost") + "/assistants")

    result = cli("assistants", "create", "--model", "gpt-4o", "--name", "a")

    assert result.exit_code == 1
    assert "redirected" in result.stderr and "localhost" in result.stderr
    assert "vkey-secret" not in result.stderr
    assert elsewhere.received == []
    assert len(gateway.received) == 1
    (row,) = log_rows(isolated_env)
    assert row.error_message and "another host, localhost" in row.error_message


def test_a_same_origin_redirect_of_a_read_is_followed(upstream: Start, cli: Cli) -> None:
    def answer(h: Handler) -> None:
        if h.path.endswith("/assistants"):
            h.json(302, b"{}", location="/v1/assistants-moved")
        else:
            h.json(200, LISTING)

    gateway = upstream(answer)

    result = cli("assistants", "list", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []
    paths = [r.path.split("?")[0] for r in gateway.received]
    assert paths == ["/v1/assistants", "/v1/assistants-moved"]


def test_a_same_origin_redirect_of_a_create_is_not_followed(upstream: Start, cli: Cli) -> None:
    gateway = upstream(lambda h: h.json(307, b"{}", location="/v1/assistants-again"))

    result = cli("assistants", "create", "--model", "gpt-4o")

    assert result.exit_code == 1
    assert "not followed" in result.stderr
    assert [r.method for r in gateway.received] == ["POST"]


# -- §2 deadlines and memory --------------------------------------------------------------


def test_headers_trickled_a_byte_at_a_time_end_at_the_attempts_deadline(
    upstream: Start, cli: Cli, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    upstream(lambda h: h.trickle(b"HTTP/1.1 200 OK\r\n" + b"x-slow: " + b"a" * 100_000))
    monkeypatch.setenv("AIGW_TIMEOUT", "1s")

    result = cli("assistants", "get", "asst_1")

    assert result.exit_code == 4
    assert "timed out" in result.stderr
    (row,) = log_rows(isolated_env)
    assert row.error_message and "Timeout" in row.error_message


def test_a_body_trickled_a_byte_at_a_time_ends_at_the_attempts_deadline(
    upstream: Start, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(h: Handler) -> None:
        h.send_raw(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        h.send_raw(b"content-length: 100000\r\n\r\n")
        h.trickle(b" " * 100_000)

    upstream(answer)
    monkeypatch.setenv("AIGW_TIMEOUT", "1s")

    result = cli("assistants", "get", "asst_1")

    assert result.exit_code == 4
    assert "timed out" in result.stderr


def test_a_response_that_never_ends_is_refused_at_the_cap(
    upstream: Start, cli: Cli, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    def answer(h: Handler) -> None:
        h.send_raw(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        h.send_raw(b"connection: close\r\n\r\n[")
        for chunk in endless():
            if h.server.hostile.stopping.is_set():
                return
            h.send_raw(chunk)

    upstream(answer)
    monkeypatch.setenv("AIGW_MAX_RESPONSE_BYTES", "1048576")

    result = cli("assistants", "get", "asst_1")

    assert result.exit_code == 1
    assert "larger than AIGW_MAX_BODY_BYTES (1,048,576 bytes)" in result.stderr
    (row,) = log_rows(isolated_env)
    assert row.error_message and "AIGW_MAX_BODY_BYTES" in row.error_message


def test_a_gzip_bomb_is_refused_by_its_decompressed_size(
    upstream: Start, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024

    def answer(h: Handler) -> None:
        h.json(200, bomb, content_encoding="gzip")

    upstream(answer)
    monkeypatch.setenv("AIGW_MAX_BODY_BYTES", "4194304")

    result = cli("assistants", "get", "asst_1")

    assert result.exit_code == 1
    assert "larger than AIGW_MAX_BODY_BYTES" in result.stderr


def test_a_compressed_answer_under_the_cap_reads_as_usual(upstream: Start, cli: Cli) -> None:
    upstream(lambda h: h.json(200, gzip.compress(ASSISTANT), content_encoding="gzip"))

    result = cli("assistants", "get", "asst_1", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"] == "asst_1"


# -- §5 untrusted text stays text ---------------------------------------------------------


def test_a_200_that_is_html_is_an_error_logged_with_its_status(
    upstream: Start, cli: Cli, isolated_env: Path
) -> None:
    def answer(h: Handler) -> None:
        page = b"<html><body>Sign in to the Wi-Fi</body></html>"
        h.send_response(200)
        h.send_header("content-type", "text/html")
        h.send_header("content-length", str(len(page)))
        h.end_headers()
        h.send_raw(page)

    upstream(answer)

    result = cli("assistants", "list")

    assert result.exit_code == 1
    assert "answered 200 with a non-JSON body: '<html>" in result.stderr
    assert result.stdout == ""
    (row,) = log_rows(isolated_env)
    assert row.status_code == 200 and row.error_message and "non-JSON" in row.error_message


ESCAPES = "\x1b[2J\x1b]0;pwned\x07\x1b[31mred\x00\x9b1m\r\x08"


def test_terminal_control_sequences_from_the_upstream_are_never_printed(
    upstream: Start, cli: Cli
) -> None:
    error = {"error": {"message": f"bad{ESCAPES} thing\nerror: fake second line"}}
    upstream(lambda h: h.json(400, json.dumps(error).encode()))

    result = cli("assistants", "list")

    assert result.exit_code == 1
    assert "bad" in result.stderr and "red" in result.stderr
    for control in ("\x1b", "\x00", "\x9b", "\x07", "\r", "\x08"):
        assert control not in result.stderr
    assert result.stderr.count("error:") == 2  # the label, and the text quoted on its line
    assert len(result.stderr.strip().splitlines()) <= 2  # the message and its hint


def test_fields_from_the_upstream_are_printed_without_control_sequences(
    upstream: Start, cli: Cli
) -> None:
    hostile = json.loads(ASSISTANT)
    hostile["name"] = f"name{ESCAPES}"
    hostile["instructions"] = f"line one\n{ESCAPES}line two"
    upstream(lambda h: h.json(200, json.dumps(hostile).encode()))

    shown = cli("assistants", "get", "asst_1")
    raw = cli("assistants", "get", "asst_1", "--json")

    assert shown.exit_code == 0, shown.stderr
    for control in ("\x1b", "\x00", "\x9b", "\x07", "\r", "\x08"):
        assert control not in shown.stdout
    assert "name" in shown.stdout and "line two" in shown.stdout
    assert json.loads(raw.stdout)["name"] == hostile["name"]  # JSON escapes them: data intact
