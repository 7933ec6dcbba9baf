"""The sandbox's in-memory state: objects by kind, IDs with the API's prefixes, list pages."""

from __future__ import annotations

import secrets
import string
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from aigw.sandbox.http import ApiError, Request, not_found

_ALPHABET = string.ascii_letters + string.digits


def new_object_id(prefix: str) -> str:
    """IDs shaped like the real API's: a prefix and 24 random letters and digits."""
    # One read of the system's randomness for the 24 base-62 digits, not one per character.
    number = int.from_bytes(secrets.token_bytes(18))
    digits = []
    for _ in range(24):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return prefix + "".join(digits)


class Collection:
    """Objects of one kind in creation order (dicts keep insertion order)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Keep the object under its id; the object."""
        self.items[obj["id"]] = obj
        return obj

    def get(self, object_id: str) -> dict[str, Any]:
        """The object with this id; the API's 404 otherwise."""
        try:
            return self.items[object_id]
        except KeyError:
            raise not_found(self.kind, object_id) from None

    def get_in(self, object_id: str, owner_field: str, owner_id: str) -> dict[str, Any]:
        """The object only if it belongs to `owner_id` (a run of *this* thread), else 404."""
        obj = self.items.get(object_id)
        if obj is None or obj[owner_field] != owner_id:
            raise not_found(self.kind, object_id)
        return obj

    def pop(self, object_id: str) -> dict[str, Any]:
        """Remove and return the object with this id; 404 otherwise."""
        obj = self.get(object_id)
        del self.items[object_id]
        return obj

    def values(self, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The objects in creation order, those `where` accepts."""
        return [o for o in self.items.values() if where is None or where(o)]


def page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """The API's cursor pagination over `items` (in creation order)."""
    query = request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise ApiError(400, "Invalid 'limit': expected an integer.", param="limit") from None
    if not 1 <= limit <= 100:
        raise ApiError(
            400,
            f"Invalid 'limit': integer below minimum value or above maximum value (got {limit}).",
            param="limit",
            code="integer_out_of_range",
        )
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(
            400,
            f"Invalid value for 'order': expected 'asc' or 'desc' (got '{order}').",
            param="order",
        )
    ordered = list(items) if order == "asc" else list(reversed(items))
    ids = [o["id"] for o in ordered]
    start, stop = 0, len(ordered)
    if after := query.get("after"):
        if after not in ids:
            raise ApiError(400, f"Invalid 'after': no object with id '{after}'.", param="after")
        start = ids.index(after) + 1
    if before := query.get("before"):
        if before not in ids:
            raise ApiError(400, f"Invalid 'before': no object with id '{before}'.", param="before")
        stop = ids.index(before)
        # Pages before a cursor are the ones nearest to it.
        start = max(start, stop - limit)
    data = ordered[start:stop][:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + len(data) < stop,
    }


class SandboxState:
    """Everything the sandbox knows. One lock: handlers are short and run on many threads."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.lock = threading.RLock()
        self.assistants = Collection("assistant")
        self.threads = Collection("thread")
        self.messages = Collection("message")
        self.runs = Collection("run")
        self.steps = Collection("run step")
        self.machines: dict[str, Any] = {}  # run id → RunMachine (aigw/sandbox/lifecycle.py)
        # Notified when a client changes a run (cancel, tool outputs) so open streams wake up.
        self.changed = threading.Condition(self.lock)
        self.request_count = 0
        # The latest chat completion requests, as sent: tests check them against the spec.
        self.chat_requests: deque[dict[str, Any]] = deque(maxlen=100)

    def now(self) -> int:
        """The sandbox clock's time in whole seconds, as API objects carry it."""
        return int(self.clock())
