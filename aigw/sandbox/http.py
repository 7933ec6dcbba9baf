"""The sandbox's HTTP plumbing: routing, JSON bodies, the API's error shape, SSE responses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aigw.common.api_errors import ApiError


def not_found(kind: str, object_id: str) -> ApiError:
    """The API's 404 for an unknown object."""
    return ApiError(404, f"No {kind} found with id '{object_id}'.")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the path template

    @classmethod
    def build(cls, method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
        """A Request from the request line's target, the headers and the body."""
        path, _, qs = target.partition("?")
        query = {k: v[-1] for k, v in parse_qs(qs, keep_blank_values=True).items()}
        return cls(method, path, query, {k.lower(): v for k, v in headers.items()}, body)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object ({} when empty); a 400 ApiError otherwise."""
        if not self.raw_body.strip():
            return {}
        try:
            value = json.loads(self.raw_body)
        except ValueError:
            raise ApiError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            ) from None
        if not isinstance(value, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return value


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class EventStream:
    """A server-sent-events response: (event name, data) pairs produced while sending.

    An event without a name (None) is sent as a `data:` line alone, as Chat Completions does.
    `again`, when given, makes the same stream anew from its start (for an Idempotency-Key
    replay: a repeated streamed create follows the object the first one made).
    """

    events: Iterator[tuple[str | None, Any]]
    headers: dict[str, str] = field(default_factory=dict)
    again: Callable[[], Iterator[tuple[str | None, Any]]] | None = None


Handler = Callable[[Request], Any]


class Router:
    """Path templates such as `/v1/threads/{thread_id}` matched to handlers by method."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        """A decorator routing `method` on a path template such as /threads/{thread_id}."""
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$")

        def decorate(handler: Handler) -> Handler:
            self.routes.append((method, pattern, handler))
            return handler

        return decorate

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters for a request; 404 or 405 otherwise."""
        allowed = False
        best: tuple[Handler, dict[str, str]] | None = None
        for route_method, pattern, handler in self.routes:
            found = pattern.match(path)
            if found is None:
                continue
            if route_method != method:
                allowed = True
            # The most literal template wins: POST /v1/threads/runs is not a thread named "runs".
            elif best is None or len(found.groupdict()) < len(best[1]):
                best = handler, found.groupdict()
        if best is not None:
            return best
        if allowed:
            raise ApiError(405, f"Method {method} not allowed for {path}.")
        raise ApiError(404, f"Invalid URL ({method} {path})", code="unknown_url")
