"""Durations as people type them, one grammar for every duration flag and setting.

One or more NUMBER+UNIT parts: `90s`, `5m`, `1h30m`, `2d` (units ms s m h d w). A bare number
is refused, since its unit would be a guess; only `0` needs none.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aigw.errors import UsageError

# Longer than anything meaningful, short enough for any datetime arithmetic: 100 years.
MAX_SECONDS = 100 * 365 * 86_400
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_PARTS = re.compile(f"(?:{_PART.pattern})+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
EXAMPLES = "90s, 5m, 1h30m or 2d"


class DurationError(ValueError):
    """Text that is not a duration; `hint` offers one when the text was a bare number."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def seconds_in(text: str, *, unit: str = "s") -> float:
    """The seconds `text` spells; a bare number is refused with a hint in `unit`."""
    value = text.strip().lower()
    if value == "0":
        return 0.0
    if _NUMBER.fullmatch(value):
        raise DurationError(f"needs a unit, got {text!r}", hint=f"did you mean {value}{unit}?")
    if not _PARTS.fullmatch(value):
        raise DurationError(f"expects a duration such as {EXAMPLES}, got {text!r}")
    seconds = sum(float(n) * UNIT_SECONDS[u] for n, u in _PART.findall(value))
    if seconds > MAX_SECONDS:
        raise DurationError(f"must be at most 100 years, got {text!r}")
    return seconds


def parse_duration(text: str, option: str, *, unit: str = "s", zero: bool = False) -> float:
    """Seconds in a flag's value; UsageError naming the flag, so commands need no try/except.

    `unit` is the one the hint suggests for a bare number; `zero` lets `0` through."""
    try:
        seconds = seconds_in(text, unit=unit)
    except DurationError as exc:
        raise UsageError(f"{option} {exc}", hint=exc.hint) from None
    if seconds == 0 and not zero:
        raise UsageError(f"{option} must be longer than zero, got {text!r}")
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
    """A point in time (UTC): a duration back from `now` (`15m`, `24h`, `7d`) or an ISO-8601
    time (`2026-01-31`, `2026-01-31T14:00`, `…Z`, `…+01:00`; no zone means UTC)."""
    value = text.strip()
    if _NUMBER.fullmatch(value) or _PARTS.fullmatch(value.lower()):
        return now - timedelta(seconds=parse_duration(value, option, unit="h"))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} expects a duration such as 15m, 24h or 7d, or an ISO-8601 time"
            f" such as 2026-01-31T14:00Z, got {text!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
