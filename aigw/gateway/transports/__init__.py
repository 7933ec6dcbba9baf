"""aigw's transport layers: each wraps an inner transport and adds one concern.

The contract every layer follows: take the inner transport first, delegate, forward close().
"""

from __future__ import annotations

from aigw.gateway.http import BaseTransport, Request, Response


class Layer(BaseTransport):
    """A transport that wraps another. Subclasses override `handle_request` and call `inner`."""

    def __init__(self, inner: BaseTransport):
        self.inner = inner

    def handle_request(self, request: Request) -> Response:
        return self.inner.handle_request(request)

    def close(self) -> None:
        """Close the layer below."""
        self.inner.close()
