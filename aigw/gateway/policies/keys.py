"""Gateway key rotation: which key to try first, and what to remember when one works.

Keys come in a configured order (GATEWAY_API_KEY, GATEWAY_API_KEY_NEXT, GATEWAY_API_KEYS for the
CLI; AIGW_UPSTREAM_GATEWAY_KEYS for the server's upstream). A 401 on one sends the same call
with the next; the one that works is remembered in the shared state by fingerprint (a sha256
prefix), never the key, so later calls and other processes start with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def fingerprint(key: str) -> str:
    """A short SHA-256 of a key: remembered and compared, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LabelledKey:
    value: str
    label: str  # where it came from: GATEWAY_API_KEY, GATEWAY_API_KEY_NEXT, GATEWAY_API_KEYS[2]


def labelled_keys(
    current: str | None, next_key: str | None, listed: str | None
) -> list[LabelledKey]:
    """The keys in rotation order with the variable each came from; duplicates dropped."""
    found: list[LabelledKey] = []
    candidates = [(current, "GATEWAY_API_KEY"), (next_key, "GATEWAY_API_KEY_NEXT")]
    for i, item in enumerate((listed or "").split(","), start=1):
        candidates.append((item.strip(), f"GATEWAY_API_KEYS item {i}"))
    seen: set[str] = set()
    for value, label in candidates:
        if value and value not in seen:
            seen.add(value)
            found.append(LabelledKey(value, label))
    return found


def in_rotation_order(
    keys: list[LabelledKey], remembered: tuple[str, bool] | None
) -> list[LabelledKey]:
    """The remembered working key first, then the others in configured order."""
    if remembered is None:
        return keys
    first = [k for k in keys if fingerprint(k.value) == remembered[0]]
    return first + [k for k in keys if k not in first]


def should_remember(
    keys: list[LabelledKey], working: LabelledKey, remembered: tuple[str, bool] | None
) -> bool:
    """Whether `working` must be written as the remembered key (and announced, when it is not
    the first configured one): not when the state already says so, nor when the configured
    order works as it is."""
    is_first = working == keys[0]
    if remembered is not None and remembered[0] == fingerprint(working.value):
        return not (remembered[1] or is_first)
    return not (remembered is None and is_first)
