"""One place that turns SDK and transport exceptions into AigwError with a one-line message."""

from __future__ import annotations

import re
import sys

from aigw.errors import AigwError, ExitCode
from aigw.settings import Settings, mask_url


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def translate(exc: BaseException, settings: Settings | None) -> AigwError | None:
    """The AigwError for `exc`, or None when it is not an API/transport error we know."""
    # A transport layer may raise AigwError (circuit open, rate limited); the SDK wraps it.
    httpx2 = sys.modules.get("httpx2")
    for link in _cause_chain(exc):
        if isinstance(link, AigwError):
            return link
        if httpx2 is not None and isinstance(link, httpx2.LocalProtocolError):
            # Its text quotes the offending header value, which may be a key: never shown.
            return AigwError(
                "a request could not be sent: a header value is not valid HTTP",
                code=ExitCode.CONFIG,
                hint="check the API and gateway keys for stray characters",
            )
    openai = sys.modules.get("openai")
    if openai is None:
        return None
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, settings)
    if isinstance(exc, openai.APITimeoutError):
        return AigwError(
            "the request timed out",
            code=ExitCode.NETWORK,
            hint="raise AIGW_TIMEOUT or check the upstream's health",
        )
    if isinstance(exc, openai.APIConnectionError):
        url = mask_url(settings.base_url) if settings else "the upstream"
        cause = exc.__cause__
        detail = f" ({type(cause).__name__})" if cause else ""
        return AigwError(
            f"cannot reach {url}{detail}",
            code=ExitCode.NETWORK,
            hint="check the URL and your network; `aigw config show` prints the route",
        )
    return None


def _api_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))


# The API's answer to a second run (or a message) on a thread whose run is still going.
ACTIVE_RUN = re.compile(r"(?P<thread>thread_\w+) already has an active run (?P<run>run_\w+)")


def _ends_in_v1(url: str) -> bool:
    return url.rstrip("/").endswith("/v1")


def _status_error(exc: BaseException, settings: Settings | None) -> AigwError:
    status = getattr(exc, "status_code", 0)
    message = f"{status}: {_api_message(exc)}"
    hint = None
    if status == 401:
        if settings is None or settings.route == "gateway":
            hint = "check GATEWAY_API_KEY (and OPENAI_API_KEY, which the gateway forwards)"
        else:
            hint = "check OPENAI_API_KEY (direct route: USE_AI_GATEWAY=false)"
    elif status == 404 and settings is not None and not _ends_in_v1(settings.base_url):
        variable = "AI_GATEWAY_URL" if settings.route == "gateway" else "OPENAI_BASE_URL"
        hint = f"does {variable} end in /v1? it is {settings.base_url}"
    elif status == 404:
        hint = "check the ID; `list` shows what exists"
    elif status == 400 and (busy := ACTIVE_RUN.search(_api_message(exc))):
        hint = (
            f"wait for it to finish, or cancel it: aigw runs cancel {busy['thread']} {busy['run']}"
        )
    elif status == 429:
        hint = "rate limited upstream; wait and retry (aigw backs off on its own)"
    elif status >= 500:
        hint = "the gateway or OpenAI failed; retry later"
    return AigwError(message, code=ExitCode.API_ERROR, hint=hint)
