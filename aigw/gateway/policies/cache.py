"""The cache policy: what is cacheable, for how long, under which key, and what a write makes
stale. Used by CacheTransport (the CLI) and the gateway server alike.

Cached: GET of the assistants list, of one assistant and of a thread's metadata — nothing
else. Fresh for the request's `Cache-Control: max-age=N` (at most MAX_CLIENT_AGE, or the
TTL when that is longer), else the configured TTL; `no-cache` bypasses the cache: nothing is
read from it and nothing is stored. The key hashes method, normalised URL and query, route
and the upstream credentials, so two identities never share an entry and no key is ever
stored. Creating, updating or deleting an assistant drops the list and that assistant;
updating or deleting a thread drops that thread.

What is kept at rest is as sensitive as a logged payload, so an entry is kept only when the
redactor (aigw/redact.py) finds nothing in it — no key, token, e-mail, card or CPF; an answer
with any is passed on uncached. Nothing larger than MAX_ENTRY_BYTES is kept either.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

import orjson

if TYPE_CHECKING:
    from aigw.redact import Redactor

HIT, MISS, BYPASS = "hit", "miss", "bypass"
MAX_ENTRY_BYTES = 1024 * 1024  # an assistants page of 100 is ~100 KB
# A client's max-age beyond AIGW_CACHE_TTL is honoured up to this: every entry is kept that
# long (in Redis, memory), so it is kept short.
MAX_CLIENT_AGE = 3600.0
# Headers that identify the caller upstream; hashed into the key, never stored.
CREDENTIAL_HEADERS = ("authorization", "openai-organization", "openai-project")
# The response headers an entry keeps.
KEPT_HEADERS = ("content-type", "x-request-id", "openai-version", "openai-processing-ms")

# Path endings (after any base path such as /v1) → the invalidation tag of what they show.
_ASSISTANTS = re.compile(r"/assistants/?$")
_ASSISTANT = re.compile(r"/assistants/([^/]+)/?$")
_THREAD = re.compile(r"/threads/(?!runs/?$)([^/]+)/?$")


def resource_tag(path: str) -> str | None:
    """What a path names, for caching and invalidation: `assistants`, `assistant:ID`, …"""
    if _ASSISTANTS.search(path):
        return "assistants"
    if found := _ASSISTANT.search(path):
        return f"assistant:{found.group(1)}"
    if found := _THREAD.search(path):
        return f"thread:{found.group(1)}"
    return None


def invalidated_by(method: str, path: str) -> list[str]:
    """Tags a write makes stale: an assistant write also drops the list it appears in."""
    tag = resource_tag(path)
    if method == "GET" or tag is None:
        return []
    if tag == "assistants":
        return ["assistants"] if method == "POST" else []
    if tag.startswith("assistant:"):
        return ["assistants", tag]
    return [tag]


def keep_for(cache_ttl: float) -> float:
    """How long an entry is kept at all: the oldest age any read may still accept."""
    return max(cache_ttl, MAX_CLIENT_AGE)


def fresh_for(max_age: float | None, cache_ttl: float) -> float:
    """How old an entry a read accepts: its max-age (else the TTL), at most `keep_for`."""
    return min(cache_ttl if max_age is None else max_age, keep_for(cache_ttl))


def max_age_of(cache_control: str | None) -> tuple[float | None, bool]:
    """(max-age seconds or None, no-cache asked) from a Cache-Control request header."""
    max_age, no_cache = None, False
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-cache", "no-store"):
            no_cache = True
        elif name == "max-age":
            with contextlib.suppress(ValueError):
                max_age = float(value.strip().strip('"'))
    return max_age, no_cache


def cache_key(
    method: str,
    origin: str,
    path: str,
    query: str,
    route: str,
    credentials: tuple[tuple[bytes, bytes], ...],
) -> str:
    """The entry's key. `origin` is scheme://host:port; `credentials` the (lower-case name,
    value) pairs of the credential headers sent upstream, sorted."""
    sorted_query = urlencode(sorted(parse_qsl(query, keep_blank_values=True))) if query else ""
    normalised = f"{origin}{path.rstrip('/')}?{sorted_query}"
    digest = hashlib.sha256(f"{method}\0{normalised}\0{route}\0".encode())
    for name, value in credentials:
        digest.update(name + b"=" + value + b"\0")
    return digest.hexdigest()


def cacheable_answer(status: int, content_type: str, cache_control: str) -> bool:
    """Whether an answer may be kept: a 200 JSON body the upstream did not mark no-store."""
    return (
        status == 200
        and content_type.startswith("application/json")
        and "no-store" not in cache_control.lower()
    )


def keepable_body(body: bytes, redactor: Redactor) -> bool:
    """Whether a cacheable answer's body may rest in the store: small enough, and JSON the
    redactor would leave as it is (nothing secret in it)."""
    if len(body) > MAX_ENTRY_BYTES:
        return False
    try:
        value = orjson.loads(body)
    except ValueError:
        return False
    return bool(redactor.value(value) == value)


def entry_tag(host: str, port: int | None, tag: str) -> str:
    """An entry's invalidation tag, scoped to the upstream it came from."""
    return f"{host}:{port or ''} {tag}"


def age_text(seconds: float) -> str:
    """An age as people read it: 42 s, 5 min, 2 h."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
