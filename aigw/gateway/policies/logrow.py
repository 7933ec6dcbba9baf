"""What a log row learns from an attempt's bodies: the IDs, model and token usage.

One rule for the CLI's logging layer and the gateway server: the path's IDs come first, then
the request body's, then the response's; usage is taken from a run object only (a streamed run
gives its final `thread.run.*` event's object).
"""

from __future__ import annotations

from typing import Any

from aigw.common.log_record import BodyFacts

_NOTHING: dict[str, Any] = {}


def body_facts(sent: Any, got: Any) -> BodyFacts:
    """The facts of a request body `sent` and a response body `got` (parsed JSON, or None)."""
    sent_obj = sent if isinstance(sent, dict) else _NOTHING
    got_obj = got if isinstance(got, dict) else _NOTHING
    kind = got_obj.get("object")
    own_id = _str(got_obj.get("id"))
    usage = got_obj.get("usage") if kind == "thread.run" else None
    if not isinstance(usage, dict):
        usage = _NOTHING
    return BodyFacts(
        _str(got_obj.get("thread_id")) or (own_id if kind == "thread" else None),
        _str(got_obj.get("run_id")) or (own_id if kind == "thread.run" else None),
        _str(sent_obj.get("assistant_id"))
        or _str(got_obj.get("assistant_id"))
        or (own_id if kind == "assistant" else None),
        _str(got_obj.get("model")) or _str(sent_obj.get("model")),
        _int(usage.get("prompt_tokens")),
        _int(usage.get("completion_tokens")),
        _int(usage.get("total_tokens")),
    )


def answer_error_text(status: int, got: Any) -> str | None:
    """The error a log row records for an answer: the API's message, else `HTTP <status>`;
    None for a success."""
    if status < 400:
        return None
    detail = got.get("error") if isinstance(got, dict) else None
    text = detail.get("message") if isinstance(detail, dict) else None
    # (the standard library's parse keeps lone surrogates: made storable like the rest)
    return storable(str(text)) if text else f"HTTP {status}"


def storable(value: Any) -> Any:
    """What SQLite and Postgres can both take: lone surrogates become U+FFFD and integers
    past 64 bits floats (such values only ever reach payloads and ids here)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return float(value)
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    return value


def _str(value: Any) -> str | None:
    """A non-empty string the store can hold (a lone surrogate becomes U+FFFD)."""
    if not isinstance(value, str) or not value:
        return None
    return value if value.isascii() else storable(value)


def _int(value: Any) -> int | None:
    """An integer SQLite and Postgres can store (bigint), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    return value if ok else None
