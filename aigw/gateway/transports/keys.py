"""Gateway key rotation without downtime: a 401 on the current key retries once with the next.

Keys come from GATEWAY_API_KEY, GATEWAY_API_KEY_NEXT and GATEWAY_API_KEYS (in that order).
The key that works is remembered in the shared state — by fingerprint (a sha256 prefix), never
the key — so later invocations start with it; aigw says once, on stderr, which variable to
promote. Messages name variables, never key material.
"""

from __future__ import annotations

from collections.abc import Callable

from aigw.common.state import SharedState
from aigw.gateway.circuit import host_of
from aigw.gateway.http import BaseTransport, Request, Response
from aigw.gateway.policies.keys import (
    LabelledKey,
    fingerprint,
    in_rotation_order,
    should_remember,
)
from aigw.gateway.transports import Layer


class KeyRotationTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        keys: list[LabelledKey],
        store: SharedState,
        *,
        header: str,
        notify: Callable[[str], None] = lambda message: None,
    ):
        super().__init__(inner)
        self.keys = keys
        self.store = store
        self.header = header
        self.notify = notify

    def handle_request(self, request: Request) -> Response:
        scope = host_of(str(request.url))
        ordered = in_rotation_order(self.keys, self.store.remembered_key(scope))
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
        if not should_remember(self.keys, key, self.store.remembered_key(scope)):
            return
        if key != self.keys[0]:
            self.notify(
                f"the gateway refused {self.keys[0].label}; {key.label} works and aigw will "
                f"use it from now on — promote it: set GATEWAY_API_KEY to the value of "
                f"{key.label}"
            )
        self.store.remember_key(scope, fingerprint(key.value), announced=True)
