"""Gateway key rotation without downtime: a 401 on the current key retries once with the next.

Keys come from GATEWAY_API_KEY, GATEWAY_API_KEY_NEXT and GATEWAY_API_KEYS (in that order).
The key that works is remembered in the local store — by fingerprint (a sha256 prefix), never
the key — so later invocations start with it; aigw says once, on stderr, which variable to
promote. Messages name variables, never key material.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from aigw.gateway.http import BaseTransport, Request, Response
from aigw.gateway.transports.base import Layer
from aigw.gateway.transports.breaker import host_of
from aigw.storage.state import StateStore


def fingerprint(key: str) -> str:
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


class KeyRotationTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        keys: list[LabelledKey],
        store: StateStore,
        *,
        header: str,
        notify: Callable[[str], None] = lambda message: None,
    ):
        super().__init__(inner)
        self.keys = keys
        self.store = store
        self.header = header
        self.notify = notify

    def _ordered(self, scope: str) -> list[LabelledKey]:
        """The remembered working key first, then the others in configured order."""
        remembered = self.store.remembered_key(scope)
        if remembered is None:
            return self.keys
        first = [k for k in self.keys if fingerprint(k.value) == remembered[0]]
        return first + [k for k in self.keys if k not in first]

    def handle_request(self, request: Request) -> Response:
        scope = host_of(str(request.url))
        ordered = self._ordered(scope)
        for position, key in enumerate(ordered):
            request.headers[self.header] = key.value
            response = self.inner.handle_request(request)
            last = position == len(ordered) - 1
            if response.status_code != 401 or last:
                if response.status_code != 401:
                    self._remember(scope, key)
                return response
            response.close()  # refused: send the same call (same call id) with the next key
        raise AssertionError("unreachable: the loop returns on the last key")

    def _remember(self, scope: str, key: LabelledKey) -> None:
        remembered = self.store.remembered_key(scope)
        is_first = key == self.keys[0]
        if remembered is not None and remembered[0] == fingerprint(key.value):
            if remembered[1] or is_first:
                return
        elif remembered is None and is_first:
            return  # the configured order works: nothing to remember or say
        if not is_first:
            self.notify(
                f"the gateway refused {self.keys[0].label}; {key.label} works and aigw will "
                f"use it from now on — promote it: set GATEWAY_API_KEY to the value of "
                f"{key.label}"
            )
        self.store.remember_key(scope, fingerprint(key.value), announced=True)
