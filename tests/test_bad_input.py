"""Every bad input gets its documented exit code and one line naming it — never `unexpected`,
a traceback, a hang or unbounded memory. Ends with property tests that feed arbitrary text and
bytes to every command's arguments and to every setting.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigw.cli import app
from aigw.errors import ExitCode
from aigw.settings import FIELDS, env_names
from tests.helpers.cli import Cli
from tests.helpers.processes import aigw_process

DOCUMENTED = {int(code) for code in ExitCode}
CLOSED_PORT_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, refused at once


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A configured gateway that refuses connections: commands fail fast, never wait."""
    monkeypatch.setenv("AI_GATEWAY_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("GATEWAY_API_KEY", "vkey-test-0000000000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000abcd")
    monkeypatch.setenv("AIGW_MAX_RETRIES", "0")
    monkeypatch.setenv("AIGW_SYNC_BUDGET", "0")


def one_line_error(result, code: int) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "error: unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith(("error:", "Usage:")), result.stderr


# -- the list of the issue, one by one ----------------------------------------------------


def test_invalid_utf8_in_an_argument_is_a_usage_error(isolated_env: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aigw",
            "assistants",
            "get",
            b"asst_\xff\xfe".decode(sys.getfilesystemencoding(), "surrogateescape"),
        ],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"argument 3 is not valid UTF-8" in done.stderr and b"unexpected" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("logs", "list", "--since", "99999999999999999999d"),
        ("logs", "prune", "--older-than", "99999999999999999999d", "--yes"),
        ("metrics", "--since", "99999999999999999999d"),
    ],
)
def test_a_duration_past_any_calendar_is_a_usage_error(cli: Cli, args: tuple[str, ...]) -> None:
    one_line_error(cli(*args), 2)


def test_a_100000_character_id_is_a_usage_error(cli: Cli, unreachable: None) -> None:
    result = cli("assistants", "get", "asst_" + "x" * 100_000)
    one_line_error(result, 2)
    assert len(result.stderr) < 500


@pytest.mark.parametrize(
    "url",
    [
        "http://gw.test/" + "v" * 100_000,
        "http://gw.test:99999/v1",
        "http://[::1/v1",
        "http://gw .test/v1",
        "http://:80/v1",
    ],
)
def test_a_bad_gateway_url_is_exit_3_as_a_setting_and_exit_2_as_a_flag(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    as_flag = cli("--gateway-url", url, "config", "show")
    monkeypatch.setenv("AI_GATEWAY_URL", url)
    as_setting = cli("config", "show")

    one_line_error(as_flag, 2)
    one_line_error(as_setting, 3)
    assert "--gateway-url" in as_flag.stderr and "AI_GATEWAY_URL" in as_setting.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AIGW_TIMEOUT", "inf"),
        ("AIGW_TIMEOUT", "nan"),
        ("AIGW_RETRY_BUDGET", "inf"),
        ("AIGW_BREAKER_COOLDOWN", "1e400"),
        ("AIGW_MAX_RETRIES", "9" * 5000),
        ("AIGW_HOME", ""),
    ],
)
def test_an_absurd_setting_is_a_configuration_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = cli("logs", "list")
    one_line_error(result, 3)
    assert variable in result.stderr


def test_an_aigw_home_that_is_a_file_is_a_configuration_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    monkeypatch.setenv("AIGW_HOME", str(home))
    result = cli("logs", "list")
    one_line_error(result, 3)
    assert "AIGW_HOME" in result.stderr


def test_an_aigw_home_too_long_is_a_configuration_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIGW_HOME", str(tmp_path / ("d" * 5000)))
    one_line_error(cli("logs", "list"), 3)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_aigw_home_is_a_configuration_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parent = tmp_path / "locked"
    parent.mkdir(mode=0o500)
    monkeypatch.setenv("AIGW_HOME", str(parent / "home"))
    one_line_error(cli("logs", "list"), 3)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_local_store_is_a_configuration_error_naming_the_file(
    cli: Cli, isolated_env: Path, damage: str
) -> None:
    isolated_env.mkdir(parents=True)
    store = isolated_env / "aigw.sqlite3"
    if damage == "garbage":
        store.write_bytes(b"this is not a database, " * 400)
    else:
        db = sqlite3.connect(store)
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
        db.commit()
        db.close()
        store.write_bytes(store.read_bytes()[:1500])

    result = cli("logs", "list")

    one_line_error(result, 3)
    assert str(store) in result.stderr and "move it aside" in result.stderr


def test_a_sandbox_port_in_use_is_a_usage_error(cli: Cli) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        result = cli("sandbox", "serve", "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    one_line_error(result, 2)


def test_a_sandbox_port_out_of_range_is_a_usage_error(cli: Cli) -> None:
    result = cli("sandbox", "serve", "--port", "70000")
    assert result.exit_code == 2 and "--port" in result.stderr


# -- §5 input files -----------------------------------------------------------------------


def test_instructions_from_dev_zero_are_refused_at_the_apis_limit(
    cli: Cli, unreachable: None
) -> None:
    result = cli("assistants", "create", "--model", "gpt-4o", "--instructions-file", "/dev/zero")
    one_line_error(result, 2)
    assert "--instructions-file" in result.stderr


def test_sigterm_stops_a_read_of_an_endless_stdin(isolated_env: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aigw",
            "assistants",
            "create",
            "--model",
            "m",
            "--instructions-file",
            "-",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    # More than a pipe holds: once written, aigw is reading (its SIGTERM handler is set).
    for _ in range(4):
        process.stdin.write(b"x" * 65536)
    process.stdin.flush()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == ExitCode.TERMINATED, err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"name": "f", "parameters": ' + "[" * 200 + "]" * 200 + "}", "nested too deeply"),
        ('{"name": "f", "n": ' + "9" * 10_000 + "}", "not usable JSON"),
        (b'{"name": "\xff\xfe"}', "not usable JSON"),
    ],
)
def test_a_tool_file_that_is_not_usable_json_is_a_usage_error(
    cli: Cli, unreachable: None, tmp_path: Path, content: str | bytes, reason: str
) -> None:
    tool = tmp_path / "tool.json"
    if isinstance(content, bytes):
        tool.write_bytes(content)
    else:
        tool.write_text(content)
    result = cli("assistants", "create", "--model", "gpt-4o", "--tool", f"function:{tool}")
    one_line_error(result, 2)
    assert "--tool" in result.stderr and reason in result.stderr


def test_an_outputs_file_nested_too_deeply_is_a_usage_error(
    cli: Cli, unreachable: None, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text("[" * 100_000 + "]" * 100_000)
    result = cli("runs", "submit-tool-outputs", "thread_1", "run_1", "--outputs-file", str(outputs))
    one_line_error(result, 2)
    assert "--outputs-file" in result.stderr


# -- properties ---------------------------------------------------------------------------

# Commands that serve or follow until stopped, or write outside AIGW_HOME: not fuzzed.
NOT_FUZZED = {
    "sandbox serve",
    "gateway serve",
    "dashboard",
    "logs tail",
    "demo",
    "completions install",
}


def leaf_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    found = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        verbs = getattr(command, "commands", None)
        for path in [[name, verb] for verb in verbs] if verbs else [[name]]:
            if " ".join(path) not in NOT_FUZZED:
                found.append(path)
    return found


LEAVES = leaf_commands()
# What a shell can hand over: any text but NUL, or bytes that need not be UTF-8 (decoded as
# Python decodes argv and the environment).
shell_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40),
    st.binary(max_size=40)
    .filter(lambda b: b"\x00" not in b)
    .map(lambda b: b.decode("utf-8", "surrogateescape")),
)
FUZZ = settings(
    max_examples=75,
    derandomize=True,  # the same examples on every run: CI stays deterministic
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    command=st.sampled_from(LEAVES),
    args=st.lists(
        st.one_of(shell_text, st.sampled_from(["--json", "--limit", "--since", "-", "--yes"])),
        max_size=4,
    ),
)
def test_no_argument_is_unexpected(
    cli: Cli, unreachable: None, command: list[str], args: list[str]
) -> None:
    result = cli(*command, *args, input="")

    assert "error: unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert result.exit_code in DOCUMENTED, (result.exit_code, result.stderr)


@FUZZ
@given(
    variable=st.sampled_from([env_names(name)[0] for name in FIELDS]),
    value=shell_text,
    command=st.sampled_from([["config", "show"], ["logs", "list"], ["assistants", "list"]]),
)
def test_no_setting_is_unexpected(
    cli: Cli,
    unreachable: None,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    command: list[str],
) -> None:
    with monkeypatch.context() as scoped:
        scoped.setenv(variable, value)
        result = cli(*command)

    assert "error: unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert result.exit_code in DOCUMENTED, (variable, result.exit_code, result.stderr)


def test_a_process_with_bad_bytes_in_a_setting_says_which(isolated_env: Path) -> None:
    done = aigw_process(
        "config",
        "show",
        env={"AI_GATEWAY_URL": b"http://gw\xff.test/v1".decode("utf-8", "surrogateescape")},
    )
    assert done.exit_code == 3 and "AI_GATEWAY_URL" in done.stderr
