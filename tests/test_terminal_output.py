"""Output for pipes and for terminals: tab-separated lines with one header when piped, tables
that keep IDs whole on 80- and 120-column terminals (driven through a pseudo-terminal), a
quiet end on a closed pipe, and retry and cache notices on a terminal only (or --verbose)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator

import pytest

from aigw.sandbox import Sandbox
from tests.helpers.cli import Cli, ok_json, point_at
from tests.helpers.processes import aigw_process

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = set("│┃━─┼╇╋┡┩")
TERMINAL_DEADLINE_S = 60


def in_terminal(*args: str, columns: int) -> str:
    """`aigw ARGS` with a pseudo-terminal COLUMNS wide as stdin, stdout and stderr."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigw", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], TERMINAL_DEADLINE_S)
            assert ready, f"aigw {' '.join(args)} wrote nothing for {TERMINAL_DEADLINE_S} s"
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(leader)
        proc.wait(timeout=TERMINAL_DEADLINE_S)
    assert proc.returncode == 0, output.decode(errors="replace")
    return ANSI.sub("", output.decode()).replace("\r\n", "\n")


@pytest.fixture
def three_assistants(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    point_at(monkeypatch, fresh_sandbox)
    ids = []
    for n in range(3):
        name = f"Support assistant number {n} with a rather long descriptive name"
        made = ok_json(
            cli, "assistants", "create", "--model", "gpt-4o-mini", "--name", name, "--json"
        )
        ids.append(made["id"])
    yield ids


def test_a_piped_list_is_one_header_line_and_tab_separated_rows(
    three_assistants: list[str],
) -> None:
    done = aigw_process("assistants", "list")
    assert done.exit_code == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].split("\t") == ["id", "name", "model", "tools", "created"]
    assert sorted(line.split("\t")[0] for line in lines[1:]) == sorted(three_assistants)
    assert not BOX & set(done.stdout)
    assert all(line == line.rstrip() for line in lines)  # no padding


def test_a_piped_record_is_field_tab_value_lines(three_assistants: list[str]) -> None:
    done = aigw_process("assistants", "get", three_assistants[0])
    fields = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    assert fields["id"] == three_assistants[0] and fields["model"] == "gpt-4o-mini"
    assert not BOX & set(done.stdout)


def test_a_record_on_a_wide_terminal_is_as_wide_as_its_longest_value(
    three_assistants: list[str],
) -> None:
    shown = in_terminal("assistants", "get", three_assistants[0], columns=200)
    lines = [line for line in shown.splitlines() if line.strip()]
    name = next(line for line in lines if line.startswith("name "))
    assert name.rstrip().endswith("with a rather long descriptive name")
    # The view ends where its longest value ends, not at the terminal's 200th column.
    assert max(len(line) for line in lines) == max(len(line.rstrip()) for line in lines) < 200


@pytest.mark.parametrize("columns", [80, 120])
def test_ids_stay_whole_on_a_narrow_terminal(three_assistants: list[str], columns: int) -> None:
    shown = in_terminal("assistants", "list", "--no-cache", columns=columns)
    for assistant_id in three_assistants:
        assert assistant_id in shown, shown
    assert all(len(line) <= columns for line in shown.splitlines())


@pytest.mark.parametrize("columns", [80, 120])
def test_log_ids_stay_whole_and_a_unique_prefix_shows_the_row(
    three_assistants: list[str], columns: int
) -> None:
    shown = in_terminal("logs", "list", columns=columns)
    ids = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", shown)
    assert len(ids) == 3, shown  # the three creates, each whole
    assert all(len(line) <= columns for line in shown.splitlines())
    prefix = ids[0][:-6]
    done = aigw_process("logs", "show", prefix)
    assert done.exit_code == 0, done.stderr
    assert dict(line.split("\t", 1) for line in done.stdout.splitlines())["id"] == ids[0]


def test_an_ambiguous_or_unknown_prefix_is_a_clear_error(three_assistants: list[str]) -> None:
    ids = [row["id"] for row in json_rows("logs", "list", "--json")]
    common = ids[0]
    for other in ids[1:]:
        while not other.startswith(common):
            common = common[:-1]
    assert common
    ambiguous = aigw_process("logs", "show", common)
    assert ambiguous.exit_code == 2 and "matches more than one" in ambiguous.stderr
    missing = aigw_process("logs", "show", "ffffffff-ffff")
    assert missing.exit_code == 1 and "no log row" in missing.stderr


def json_rows(*args: str) -> list[dict[str, object]]:
    done = aigw_process(*args)
    assert done.exit_code == 0, done.stderr
    return json.loads(done.stdout)


def test_a_closed_pipe_ends_tail_follow_quietly(three_assistants: list[str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigw", "logs", "tail", "-f", "--json", "--interval", "100ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("{")
    proc.stdout.close()  # what `| head -1` does after its line
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == ""


def test_a_closed_pipe_ends_a_listing_quietly(three_assistants: list[str]) -> None:
    done = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {sys.executable} -m aigw logs list --limit 100 | head -c 1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == ""


def test_retries_are_told_on_a_terminal_and_silent_when_piped(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    fresh_sandbox.faults.add("GET /v1/assistants 503 x1")
    shown = in_terminal("assistants", "list", "--no-cache", columns=120)
    assert re.search(r"retrying in \d+\.\d s — 503 from 127\.0\.0\.1:\d+ \(attempt 2 of 4\)", shown)
    fresh_sandbox.faults.add("GET /v1/assistants 503 x1")
    piped = aigw_process("assistants", "list", "--no-cache")
    assert piped.exit_code == 0 and piped.stderr == ""
    fresh_sandbox.faults.add("GET /v1/assistants 503 x1")
    verbose = aigw_process("--verbose", "assistants", "list", "--no-cache")
    assert "retrying in" in verbose.stderr


def test_a_cached_answer_says_so_on_a_terminal_and_not_when_piped(
    three_assistants: list[str],
) -> None:
    aigw_process("assistants", "list")  # fills the cache
    shown = in_terminal("assistants", "list", columns=120)
    assert re.search(r"cached \d+ s ago — --no-cache for fresh", shown), shown
    piped = aigw_process("assistants", "list")
    assert piped.exit_code == 0 and piped.stderr == ""


def test_upstream_text_keeps_its_content_but_not_its_control_sequences(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    name = "Evil\x1b]0;pwned\x07 \x1b[2Jname\x1b[31m"
    made = ok_json(cli, "assistants", "create", "--model", "gpt-4o", "--name", name)
    for args in (("assistants", "list"), ("assistants", "get", made["id"])):
        done = aigw_process(*args)
        assert "Evil name" in done.stdout and "\x1b" not in done.stdout
    shown = in_terminal("assistants", "list", "--no-cache", columns=120)
    assert "Evil name" in shown and "pwned" not in shown


def test_a_huge_cell_is_cut_on_a_terminal_but_not_when_piped_or_as_json(
    cli: Cli, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    text = "".join(f"word{n} " for n in range(8000)).strip()  # about 70,000 characters
    made = ok_json(cli, "assistants", "create", "--model", "gpt-4o", "--instructions", text)
    thread = ok_json(cli, "threads", "create")
    message = ok_json(cli, "messages", "create", thread["id"], "--content", text)
    left_out = f"…({len(text) - 2000:,}morecharacters;--jsonshowsall)"

    def squashed(shown: str) -> str:  # the table wraps the cell: compare without white space
        return re.sub(r"\s+", "", shown)

    shown_id = {"assistants": made["id"], "messages": message["id"]}
    for args in (("assistants", "get", made["id"]), ("messages", "list", thread["id"])):
        shown = in_terminal(*args, columns=120)
        assert shown_id[args[0]] in shown  # the ID whole
        assert "word0word1" in squashed(shown) and left_out in squashed(shown), shown
        assert "word7999" not in shown and len(shown) < 10_000
        piped = aigw_process(*args)
        assert piped.exit_code == 0 and text in piped.stdout
        assert "more characters" not in piped.stdout
    done = aigw_process("assistants", "get", made["id"], "--json")
    assert json.loads(done.stdout)["instructions"] == text
