"""The gateway's Idempotency-Key for a POST that has none: one per request, and the same one
for a client's retry of it, whichever instance the retry reaches.

A request is known again by its fingerprint — a sha256 of the caller's credentials, the
method, path, query and body; nothing secret is kept. A first try (the SDK's
`x-stainless-retry-count` absent or 0) gets a new key, remembered under its fingerprint in
the shared state for WINDOW_S; a retry (count ≥ 1) gets the remembered one, so the upstream
answers the create it already made instead of making another. Two identical first tries
are two requests: each gets its own key, and the later one's is remembered (the SDK's retry
does not say which first try it repeats; docs/scaling.md says what follows).
"""

from __future__ import annotations

import hashlib

HEADER = "Idempotency-Key"
WINDOW_S = 600.0  # longer than any client's retries of one request


def request_fingerprint(
    credentials: list[str], method: str, path: str, query: str, body: bytes
) -> str:
    """The fingerprint a request and its retries share."""
    digest = hashlib.sha256()
    for part in (*credentials, method, path, query):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(body)
    return digest.hexdigest()
