"""Rehearsing outages: scripted faults, Idempotency-Key replay and key revocation.

Everything a request meets before (and after) the sandbox's handlers:

* **Faults**, set by `aigw sandbox serve --fault SPEC`, at runtime by the admin endpoint
  `POST /v1/__sandbox/faults`, or in tests with `sandbox.faults.add(SPEC)`. A spec reads

      METHOD PATH [STATUS | drop] [retry-after=S] [retry-after-ms=MS] [delay=MS] [xN] [after]

  METHOD is GET, POST, DELETE… or `*`; PATH a glob over the path without the query
  (`/v1/assistants*`, `*`); STATUS the code to answer (in the API's error shape); `drop`
  closes the connection without an answer; `delay=MS` waits first (alone: a slow but normal
  answer); `xN` applies it to the next N matching requests (default: every one until cleared);
  `after` lets the request do its work first and then replaces the answer — a create that
  made its object but whose response was lost. Examples: `GET /v1/assistants 429
  retry-after=1 x2`, `* * 503 x5`, `POST /v1/assistants 500 x1 after`, `GET * drop x1`.
* **Idempotency-Key**: a POST repeating the key of an earlier successful POST gets that
  answer again and changes nothing (a different body with the same key is a 400, as Stripe).
  A streamed create repeated so gets the stream of the object the first one made, from its
  first event.
* **Key revocation**: `POST /v1/__sandbox/keys/revoke {"key": …}` makes a gateway key fail
  with 401 from then on.

`requests_seen` counts every API request that reached the sandbox, faulted or not, so a test
can prove a call never touched the network.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aigw.sandbox.http import ApiError, EventStream, Request, Response, Router

ADMIN_PREFIX = "/v1/__sandbox"


class Dropped:
    """The answer to a `drop` fault: the server closes the connection and says nothing."""


DROP = Dropped()


@dataclass
class Fault:
    method: str = "*"
    path: str = "*"
    status: int | None = None
    drop: bool = False
    delay_ms: int = 0
    retry_after: str | None = None  # seconds or an HTTP date, sent as-is
    retry_after_ms: int | None = None
    times: int | None = None  # None: every matching request until cleared
    after: bool = False

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request with this method and path."""
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.path)

    def answer(self) -> Response | Dropped | None:
        """What the fault makes of the request: an error answer, a dropped connection, or None."""
        if self.drop:
            return DROP
        if self.status is None:
            return None
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["retry-after"] = self.retry_after
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        kind = "rate_limit_exceeded" if self.status == 429 else "server_error"
        error = ApiError(self.status, f"Injected fault: {self.status}.", type=kind, code=kind)
        return Response(self.status, error.body(), headers)


def parse_fault(spec: str) -> Fault:
    """A Fault from the spec syntax in the module docstring; ValueError says what is wrong."""
    words = spec.split()
    if len(words) < 3:
        raise ValueError(f"fault {spec!r}: expected METHOD PATH then STATUS, drop or delay=MS")
    fault = Fault(method=words[0].upper(), path=words[1])
    for word in words[2:]:
        name, sep, value = word.partition("=")
        try:
            if word.isdigit() and 100 <= int(word) <= 599:
                fault.status = int(word)
            elif word == "drop":
                fault.drop = True
            elif word == "after":
                fault.after = True
            elif word.startswith("x") and word[1:].isdigit():
                fault.times = int(word[1:])
            elif sep and name == "times":
                fault.times = int(value)
            elif sep and name == "delay":
                fault.delay_ms = int(value)
            elif sep and name == "retry-after":
                fault.retry_after = value
            elif sep and name == "retry-after-ms":
                fault.retry_after_ms = int(value)
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"fault {spec!r}: cannot read {word!r}") from None
    if fault.status is None and not fault.drop and not fault.delay_ms:
        raise ValueError(f"fault {spec!r}: give a STATUS, drop, or delay=MS")
    return fault


Handler = Callable[[Request], "Response | EventStream"]


class Faults:
    """The faults, remembered idempotent answers and revoked keys of one sandbox."""

    def __init__(self, key_header: str = "x-vercel-ai-gateway-key"):
        self.key_header = key_header.lower()
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.revoked: set[str] = set()
        self.requests_seen = 0
        self._answers: dict[str, tuple[str, Response | EventStream]] = {}
        self._idempotency_lock = threading.Lock()

    # -- the Python API (tests) and the admin endpoint share these -------------------------
    def add(self, fault: Fault | str, **fields: Any) -> Fault:
        """Add a fault (a spec string or a Fault), with fields overridden; the one added."""
        made = parse_fault(fault) if isinstance(fault, str) else fault
        for name, value in fields.items():
            setattr(made, name, value)
        with self.lock:
            self.faults.append(made)
        return made

    def clear(self) -> None:
        """Remove every fault."""
        with self.lock:
            self.faults.clear()

    def revoke(self, key: str) -> None:
        """Refuse this key from now on (401), as a revoked upstream key is."""
        with self.lock:
            self.revoked.add(key)

    def _take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # -- around dispatch -------------------------------------------------------------------
    def around(self, request: Request, handle: Handler) -> Response | EventStream | Dropped:
        """Handle a request through the first fault that matches it, if any."""
        if request.path.startswith(ADMIN_PREFIX):
            return handle(request)
        with self.lock:
            self.requests_seen += 1
        fault = self._take(request.method, request.path)
        if fault is not None and fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        if fault is not None and not fault.after and (answer := fault.answer()) is not None:
            return answer
        if request.headers.get(self.key_header) in self.revoked:
            error = ApiError(401, "This gateway key was revoked.", code="invalid_api_key")
            return Response(401, error.body())
        result = self._idempotent(request, handle)
        if fault is not None and fault.after and (answer := fault.answer()) is not None:
            return answer
        return result

    def _idempotent(self, request: Request, handle: Handler) -> Response | EventStream:
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or not key:
            return handle(request)
        scope = f"{request.headers.get('authorization', '')}\0{key}"
        body = hashlib.sha256(request.method.encode() + request.path.encode() + request.raw_body)
        # One lock for every keyed POST: a repeat racing the first waits for its answer.
        with self._idempotency_lock:
            if scope in self._answers:
                digest, answer = self._answers[scope]
                if digest != body.hexdigest():
                    error = ApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                        code="idempotency_key_reused",
                    )
                    return Response(400, error.body())
                replayed = {**answer.headers, "idempotent-replayed": "true"}
                if isinstance(answer, EventStream):
                    assert answer.again is not None
                    return EventStream(answer.again(), replayed, answer.again)
                return Response(answer.status, answer.body, replayed)
            result = handle(request)
            if isinstance(result, EventStream) and result.again is not None:
                self._answers[scope] = (body.hexdigest(), result)
            elif isinstance(result, Response) and 200 <= result.status < 300:
                stored = Response(
                    result.status, json.loads(json.dumps(result.body)), dict(result.headers)
                )
                self._answers[scope] = (body.hexdigest(), stored)
            return result

    # -- admin endpoints (no API key needed) -----------------------------------------------
    def register(self, router: Router) -> None:
        """Add the admin routes that list, add and clear faults."""

        @router.route("GET", f"{ADMIN_PREFIX}/faults")
        def list_faults(request: Request) -> dict[str, Any]:
            with self.lock:
                faults = [asdict(f) for f in self.faults]
            return {"faults": faults, "requests_seen": self.requests_seen}

        @router.route("POST", f"{ADMIN_PREFIX}/faults")
        def add_fault(request: Request) -> dict[str, Any]:
            body = request.json()
            try:
                fault = self.add(str(body["spec"])) if "spec" in body else self.add(Fault(**body))
            except (ValueError, TypeError) as exc:
                raise ApiError(400, str(exc)) from None
            return asdict(fault)

        @router.route("DELETE", f"{ADMIN_PREFIX}/faults")
        def clear_faults(request: Request) -> dict[str, Any]:
            self.clear()
            return {"faults": []}

        @router.route("POST", f"{ADMIN_PREFIX}/keys/revoke")
        def revoke_key(request: Request) -> dict[str, Any]:
            key = request.json().get("key")
            if not isinstance(key, str) or not key:
                raise ApiError(400, 'Give the key to revoke as {"key": "…"}.', param="key")
            self.revoke(key)
            return {"revoked": True, "revoked_count": len(self.revoked)}
