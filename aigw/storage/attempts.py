"""One HTTP attempt as the logging layer saw it: what must reach the disk before the call
returns, in the cheapest form to take and write.

The logging layer keeps these facts (a JSON array in the process's journal, storage/journal.py);
the log row is made from them when the journal is moved into the store, off the call's path:
its UUIDv7 id and created_at from the start time, the endpoint template and the IDs in the path,
the agent the mirror recorded for the assistant. Measured inside a loopback call of ~0.9 ms,
making the whole row there cost ~25 µs, mostly the cold start of each step after the network
wait; these facts cost a third of that (bench/logging.py).

Nothing here is sensitive: payloads are redacted (and present only with AIGW_LOG_PAYLOADS), the
error text is redacted, and the rest are ids, names, numbers and the path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aigw.gateway.endpoints import endpoint_of
from aigw.storage.base import COLUMNS, LogRecord, new_id
from aigw.storage.sqlite import json_text

SOURCE = "aigw"  # who wrote the row (the seed app's own inserts leave it NULL)
FORMAT = 1  # the first value of an attempt's line; a LogRecord's row starts with its id (a str)


class Attempt(NamedTuple):
    """The facts, in line order. The logging layer builds them as a plain tuple (cheaper on
    every call); what it leaves unknown is None."""

    format: int  # FORMAT
    started_ns: int  # time.time_ns() as the attempt started: created_at, and the id's time
    latency_ms: float
    method: str
    path: str  # the raw path, IDs included, without the query string
    status_code: int | None = None
    request_id: str | None = None
    call_id: str | None = None  # from the retry layer; None: a call of this one attempt
    attempt: int | None = None
    route: str | None = None
    user_id: str | None = None
    cache_status: str | None = None
    error_message: str | None = None  # redacted
    thread_id: str | None = None  # these four from the bodies; the path's IDs come first
    run_id: str | None = None
    assistant_id: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    request_payload: Any = None  # redacted, or None
    response_payload: Any = None


def is_attempt(values: Sequence[Any]) -> bool:
    """A journal line's values: an attempt's facts (else a LogRecord's row)."""
    if not isinstance(values, list | tuple) or len(values) != len(Attempt._fields):
        return False
    return values[0] == FORMAT


def attempt_row(facts: Sequence[Any], agent_for: Callable[[str], str | None]) -> tuple[Any, ...]:
    """The attempt's log row as the local store inserts it (INSERT_ROW's COLUMNS order: Unix
    seconds, payloads as JSON text). `agent_for` maps an assistant id to its agents.id."""
    (
        _,
        started_ns,
        latency_ms,
        method,
        path,
        status_code,
        request_id,
        call_id,
        attempt,
        route,
        user_id,
        cache_status,
        error_message,
        thread_id,
        run_id,
        assistant_id,
        model,
        prompt_tokens,
        completion_tokens,
        total_tokens,
        request_payload,
        response_payload,
    ) = facts  # in Attempt's order; unpacked, not made an Attempt: it runs once per row
    endpoint = endpoint_of(path)
    ids = endpoint.ids
    record_id = new_id(started_ns // 1_000_000)
    assistant_id = ids.get("assistant_id") or assistant_id
    return (
        record_id,
        started_ns / 1e9,
        endpoint.template,
        method,
        status_code,
        latency_ms,
        json_text(request_payload),
        json_text(response_payload),
        error_message,
        user_id,
        agent_for(assistant_id) if assistant_id else None,
        endpoint.path,
        request_id,
        str(call_id) if call_id else record_id,  # a call of one attempt: named by its id
        int(attempt or 1),
        route,
        cache_status,
        ids.get("thread_id") or thread_id,
        ids.get("run_id") or run_id,
        assistant_id,
        model,
        prompt_tokens,
        completion_tokens,
        total_tokens,
        SOURCE,
    )


def attempt_record(facts: Sequence[Any], agent_for: Callable[[str], str | None]) -> LogRecord:
    """The attempt's log row as a LogRecord (for a store's write, or to look at in tests)."""
    values = dict(zip(COLUMNS, attempt_row(facts, agent_for), strict=True))
    values["created_at"] = datetime.fromtimestamp(values["created_at"], UTC)
    values["request_payload"], values["response_payload"] = facts[-2], facts[-1]  # as JSON
    return LogRecord(**values)


def no_agent(assistant_id: str) -> str | None:
    return None
