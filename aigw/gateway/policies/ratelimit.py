"""The rate limit's rule (`AIGW_RATE_LIMIT`, `AIGW_KEY_RATE_LIMIT`): a spec such as `60/min`
read into the GCRA rule the shared state takes slots by (aigw/common/state.py), and the
bucket time a `Retry-After` pause sets; the CLI's layer and the server use the same."""

from __future__ import annotations

import re

from aigw.common.state import MAX_SHARED_PAUSE, Gcra
from aigw.errors import AigwError, ExitCode

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNITS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]+?)s?\s*$")


def parse_rate(spec: str) -> tuple[int, float]:
    """`60/min` → (60, 60.0); also `10/s`, `1000/hour`, `5/10s`."""
    found = _RATE.match(spec.lower())
    unit = found and (_UNITS.get(found.group(3)) or _UNITS.get(found.group(3) + "s"))
    if not found or not unit or int(found.group(1)) < 1:
        raise AigwError(
            f"invalid AIGW_RATE_LIMIT {spec!r}",
            code=ExitCode.CONFIG,
            hint="use COUNT/PERIOD, e.g. 60/min, 10/s, 1000/hour or 5/10s",
        )
    multiple = float(found.group(2)) if found.group(2) else 1.0
    return int(found.group(1)), multiple * unit


def gcra_of(spec: str) -> Gcra:
    """The GCRA rule of a rate: a full bucket lets `count` calls through at once, then one per
    interval."""
    count, period = parse_rate(spec)
    interval = period / count
    return Gcra(interval, period - interval)


def pause_until(rule: Gcra, now: float, seconds: float) -> float:
    """The bucket time that keeps every slot closed for `seconds` (at most MAX_SHARED_PAUSE)."""
    return now + min(seconds, MAX_SHARED_PAUSE) + rule.tolerance
