"""Durations as people type them (`90s`, `10m`, `1h30m`, `7d`, `2w`) and back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aigw.errors import UsageError

# Longer than anything meaningful, short enough for any datetime arithmetic: 100 years.
MAX_SECONDS = 100 * 365 * 86_400
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str, option: str = "--timeout") -> float:
    """Seconds in `text`: one or more NUMBER+UNIT parts (ms s m h d w), or a bare number of
    seconds. Raises UsageError with the option's name, so commands need no try/except."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    elif value and re.fullmatch(f"(?:{_PART.pattern})+", value):
        seconds = sum(float(n) * UNIT_SECONDS[unit] for n, unit in _PART.findall(value))
    else:
        raise UsageError(
            f"{option} expects a duration such as 90s, 10m, 1h or 7d, got {text!r}",
        )
    if seconds <= 0:
        raise UsageError(f"{option} must be longer than zero, got {text!r}")
    if seconds > MAX_SECONDS:
        raise UsageError(f"{option} must be at most 100 years, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short reading of `seconds`: 850ms, 42s, 10m, 1h05m."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != int(seconds) else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m" if secs == 0 else f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h" if minutes == 0 else f"{hours}h{minutes:02d}m"


def parse_instant(text: str, option: str, now: datetime) -> datetime:
    """A point in time (UTC): a duration back from `now` (`15m`, `24h`, `7d`, `2w`) or an
    ISO-8601 time (`2026-01-31`, `2026-01-31T14:00`, `…Z`, `…+01:00`; no zone means UTC)."""
    value = text.strip()
    try:
        return now - timedelta(seconds=parse_duration(value, option))
    except UsageError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} expects a duration such as 15m, 24h, 7d or 2w, or an ISO-8601 time"
            f" such as 2026-01-31T14:00Z, got {text!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
