"""`aigw doctor --gateway-url URL`: is a running `aigw gateway serve` healthy?

Read from its operations endpoints and one refused request, never an upstream call: alive
(/healthz), ready (/readyz: the local store writable), the CLI's gateway key accepted, the
upstream's circuit, and the log rows waiting for sync.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any, NamedTuple

from aigw.errors import UsageError
from aigw.services.doctor import Check

if TYPE_CHECKING:
    from aigw.settings import Settings

TIMEOUT_S = 5.0
# A request the gateway answers itself once the key is accepted (a list's limit must be
# 1–100), so the key is checked without calling the upstream or spending a rate limit.
KEY_PROBE = "/assistants?limit=0"
# What a request that got no answer raises: refused, reset, timed out, a broken answer.
UNANSWERED = (OSError, ValueError, http.client.HTTPException)


class GatewayReport(NamedTuple):
    checks: list[Check]
    reachable: bool  # False: nothing answered at the URL (exit 4, not 1)


class _Answer(NamedTuple):
    status: int
    body: Any  # parsed JSON, else None
    ms: float
    location: str | None = None  # where a 3xx points


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer: following it would send the gateway key to another host."""

    def redirect_request(self, *args: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _get(url: str, headers: dict[str, str] | None = None) -> _Answer:
    """One GET; an HTTP error or redirect status is an answer, no answer raises UNANSWERED."""
    request = urllib.request.Request(url, headers=headers or {})
    started = time.perf_counter()
    location = None
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as answer:
            status, raw = answer.status, answer.read(1 << 20)
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read(1 << 20)
        location = error.headers.get("location") if error.headers else None
    ms = (time.perf_counter() - started) * 1000
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    return _Answer(status, body, ms, location)


def _unanswered(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}"


def gateway_base(url: str) -> str:
    """The gateway's /v1 URL from what was given (with or without /v1, a trailing slash)."""
    base = url.strip().rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def check_gateway(settings: Settings, url: str) -> GatewayReport:
    """The checks, in order; the later ones are skipped when the gateway does not answer."""
    from aigw.settings import mask, mask_url

    if not url.strip().lower().startswith(("http://", "https://")):
        raise UsageError(f"--gateway-url must be an http(s) URL, got {url[:100]!r}")
    base = gateway_base(url)
    root = base.removesuffix("/v1")
    shown = mask_url(base)
    try:
        alive = _get(f"{root}/healthz")
    except UNANSWERED as exc:
        checks = [
            Check(
                "gateway",
                "fail",
                f"cannot reach {shown} ({_unanswered(exc)})",
                "is `aigw gateway serve` running there? Its first line says the URL",
            )
        ]
        rest = ("gateway ready", "gateway key", "gateway upstream", "gateway sync")
        checks += [Check(name, "skip", "needs the gateway") for name in rest]
        return GatewayReport(checks, reachable=False)
    if alive.status != 200 or not isinstance(alive.body, dict) or alive.body.get("status") != "ok":
        checks = [
            Check(
                "gateway",
                "fail",
                f"{shown} answered HTTP {alive.status} on /healthz: not an aigw gateway",
                "point --gateway-url at the URL `aigw gateway serve` printed",
            )
        ]
        return GatewayReport(checks, reachable=True)
    checks = [Check("gateway", "ok", f"{shown} alive ({alive.ms:.0f} ms)")]
    try:
        ready = _get(f"{root}/readyz")
    except UNANSWERED as exc:
        checks.append(_stopped("gateway ready", shown, "/readyz", exc))
        later = ("gateway key", "gateway upstream", "gateway sync")
        checks += [Check(name, "skip", "needs the gateway") for name in later]
        return GatewayReport(checks, reachable=False)
    body = ready.body if isinstance(ready.body, dict) else {}
    checks.append(_ready(ready.status, body))
    try:
        checks.append(_key(settings, base, mask))
    except UNANSWERED as exc:
        checks.append(_stopped("gateway key", shown, KEY_PROBE, exc))
        return GatewayReport([*checks, _circuit(body), _sync(body)], reachable=False)
    checks.append(_circuit(body))
    checks.append(_sync(body))
    return GatewayReport(checks, reachable=True)


def _stopped(name: str, shown: str, path: str, exc: BaseException) -> Check:
    fix = "is the gateway overloaded or restarting? Try again, then see its log"
    return Check(name, "fail", f"{shown} gave no answer on {path} ({_unanswered(exc)})", fix)


def _ready(status: int, body: dict[str, Any]) -> Check:
    store = body.get("local_store") or {}
    flight = body.get("in_flight")
    if status == 200:
        return Check("gateway ready", "ok", f"ready; local store writable; {flight} in flight")
    if not store.get("writable", True):
        return Check(
            "gateway ready",
            "fail",
            f"not ready: its local store cannot be written ({store.get('error')})",
            "check AIGW_HOME on the gateway's machine (space, permissions)",
        )
    return Check("gateway ready", "fail", f"not ready (HTTP {status}): see the upstream check")


def _key(settings: Settings, base: str, mask: Any) -> Check:
    keys = settings.gateway_keys
    header = settings.gateway_key_header
    if not keys:
        return Check(
            "gateway key", "fail", "GATEWAY_API_KEY is not set", "set it to the gateway's key"
        )
    answer = _get(f"{base}{KEY_PROBE}", {header: keys[0]})
    if 300 <= answer.status < 400:
        # (the host alone: a URL's user and password are never shown)
        host = urllib.parse.urlsplit(answer.location or "").netloc.rpartition("@")[2]
        return Check(
            "gateway key",
            "fail",
            f"the gateway redirected to {host or 'an unnamed place'}; not followed",
            "point --gateway-url at the gateway itself, the URL `aigw gateway serve` printed",
        )
    if answer.status == 401:
        return Check(
            "gateway key",
            "fail",
            f"GATEWAY_API_KEY ({mask(keys[0])}) refused by the gateway in {header}",
            "use one of the gateway's GATEWAY_API_KEY, GATEWAY_API_KEY_NEXT or GATEWAY_API_KEYS",
        )
    return Check("gateway key", "ok", f"GATEWAY_API_KEY ({mask(keys[0])}) accepted in {header}")


def _circuit(body: dict[str, Any]) -> Check:
    upstream = body.get("upstream") or {}
    host, circuit = upstream.get("host", "?"), upstream.get("circuit")
    if circuit == "closed":
        return Check("gateway upstream", "ok", f"{host}: circuit closed")
    if circuit == "half_open":
        return Check("gateway upstream", "warn", f"{host}: circuit half-open, one probe admitted")
    if circuit is None:
        return Check("gateway upstream", "fail", "/readyz did not say (not an aigw gateway?)")
    return Check(
        "gateway upstream",
        "fail",
        f"{host}: circuit {circuit}; the gateway answers 503 until its probe",
        f"aigw breaker reset {host} on the gateway's machine (same AIGW_HOME), or wait",
    )


def _sync(body: dict[str, Any]) -> Check:
    rows = body.get("log_rows") or {}
    pending, uncommitted = rows.get("pending_sync", 0), rows.get("uncommitted", 0)
    if rows.get("write_error"):
        return Check(
            "gateway sync",
            "fail",
            f"log rows cannot be written: {rows['write_error']}",
            "check AIGW_HOME on the gateway's machine",
        )
    if rows.get("remote") is None and "remote" in rows:
        return Check(
            "gateway sync", "ok", f"no remote store: {pending} row(s) kept in its local store"
        )
    if rows.get("sync_error"):
        return Check(
            "gateway sync",
            "warn",
            f"{pending} row(s) wait for sync: {rows['sync_error']}",
            "fix the database; the rows are kept and sent when it answers",
        )
    return Check(
        "gateway sync",
        "ok",
        f"{pending} row(s) pending sync, {uncommitted} uncommitted (synced on a timer)",
    )
