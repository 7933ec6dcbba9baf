"""One duration grammar for every duration flag and setting: `90s`, `5m`, `1h30m`, `2d`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aigw.durations import format_duration, parse_duration, parse_instant
from aigw.errors import ConfigError, ExitCode, UsageError
from aigw.settings import load_settings

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172_800),
        ("2w", 1_209_600),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        (" 24H ", 86_400),
    ],
)
def test_durations_read_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text, "--timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "10x", "-5s", "0s", "0", "m", "5 m", "1h-2m"])
def test_a_bad_duration_is_a_usage_error_naming_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--since"):
        parse_duration(text, "--since")


def test_a_bare_number_is_refused_with_the_duration_it_probably_meant() -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration("24", "--older-than", unit="d")
    assert caught.value.message == "--older-than needs a unit, got '24'"
    assert caught.value.hint == "did you mean 24d?"


def test_zero_needs_no_unit_where_zero_is_allowed() -> None:
    assert parse_duration("0", "--max-age", zero=True) == 0
    assert parse_duration("0s", "--max-age", zero=True) == 0


def test_an_instant_is_a_duration_back_or_an_iso_time() -> None:
    assert parse_instant("1h30m", "--since", NOW) == NOW - timedelta(minutes=90)
    assert parse_instant("2026-01-30T08:00", "--since", NOW) == datetime(
        2026, 1, 30, 8, 0, tzinfo=UTC
    )
    with pytest.raises(UsageError) as caught:
        parse_instant("24", "--since", NOW)
    assert caught.value.hint == "did you mean 24h?"


def test_durations_print_short() -> None:
    assert [format_duration(s) for s in (0.25, 3.5, 42, 600, 605, 3600, 5400)] == [
        "250ms",
        "3.5s",
        "42s",
        "10m",
        "10m05s",
        "1h",
        "1h30m",
    ]


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["metrics", "--since", "24", "--local", "--json"], "did you mean 24h?"),
        (["logs", "prune", "--older-than", "30", "--local", "--dry-run"], "did you mean 30d?"),
        (["logs", "tail", "--interval", "2", "--local"], "did you mean 2s?"),
        (["runs", "create", "thread_x", "--assistant", "asst_x", "--timeout", "90"], "90s?"),
    ],
)
def test_every_duration_flag_refuses_a_bare_number_with_a_hint(cli, argv, hint) -> None:
    result = cli(*argv)
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert "needs a unit" in result.stderr and hint in result.stderr
    assert result.stdout == ""


def test_a_duration_setting_takes_the_same_grammar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGW_TIMEOUT", "1m30s")
    monkeypatch.setenv("AIGW_CACHE_TTL", "0")
    settings = load_settings()
    assert (settings.timeout, settings.cache_ttl) == (90, 0)
    monkeypatch.setenv("AIGW_TIMEOUT", "60")
    with pytest.raises(ConfigError, match=r"AIGW_TIMEOUT: needs a unit.*did you mean 60s\?"):
        load_settings()
