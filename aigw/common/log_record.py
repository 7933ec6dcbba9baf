"""The log row every layer shares: LogRecord, its time-ordered id, the table's column order.

The logging layers make these rows and the stores keep them; neither needs the other for it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol

# The columns of ai_gateway_logs, in the order of INSERT_ROW and of the remote COPY (LogRecord
# has the same fields in another order: RECORD_FIELDS).
COLUMNS = (
    "id",
    "created_at",
    "endpoint",
    "method",
    "status_code",
    "latency_ms",
    "request_payload",
    "response_payload",
    "error_message",
    "user_id",
    "agent_id",
    "path",
    "request_id",
    "call_id",
    "attempt",
    "route",
    "cache_status",
    "thread_id",
    "run_id",
    "assistant_id",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "source",
)


UUID_SHAPE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)


def is_uuid(value: str | None) -> bool:
    """Whether Postgres would take `value` as a uuid (in its canonical, hyphenated shape)."""
    return bool(value) and UUID_SHAPE.match(value) is not None  # type: ignore[arg-type]


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def new_id(unix_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): the Unix time in milliseconds, then random bits.

    Ids sort by creation time (the remote primary key grows at its right edge), and an id
    says when its row was made: the local store finds a row by id through its `created_at`
    index (`id_time`), so it keeps no index on `id`.
    """
    ms = (time.time_ns() // 1_000_000 if unix_ms is None else unix_ms) & 0xFFFF_FFFF_FFFF
    value = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    value[6] = 0x70 | value[6] & 0x0F  # version 7
    value[8] = 0x80 | value[8] & 0x3F  # variant 10
    digits = value.hex()  # str(uuid.UUID(bytes=value)), without building the object
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def id_time(record_id: str) -> float | None:
    """The Unix time (seconds) a UUIDv7 from `new_id` carries; None for any other id."""
    if not is_uuid(record_id) or record_id[14] != "7":
        return None
    return int(record_id[:8] + record_id[9:13], 16) / 1000


@dataclass(slots=True)
class BodyFacts:
    """What a row learns from an attempt's bodies (gateway/policies/logrow.py)."""

    thread_id: str | None = None
    run_id: str | None = None
    assistant_id: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None

    def row_fields(self, ids: Mapping[str, str]) -> dict[str, Any]:
        """The log row's fields of these facts, the IDs in the request's path (`ids`) winning
        over the bodies'."""
        found = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("thread_id", "run_id", "assistant_id"):
            found[name] = ids.get(name) or found[name]
        return found


@dataclass(slots=True)
class LogRecord:
    """One HTTP attempt, as stored in `ai_gateway_logs`. Payloads are already redacted."""

    endpoint: str  # the template, e.g. /v1/threads/{thread_id}/runs
    method: str
    id: str = field(default_factory=new_id)  # client-generated: the provider's ids can repeat
    created_at: datetime = field(default_factory=utcnow)  # UTC, when the attempt started
    status_code: int | None = None  # None: no response (network error, refused locally)
    latency_ms: float | None = None  # float here, rounded to an integer remotely
    request_payload: Any = None  # JSON value, redacted; None unless AIGW_LOG_PAYLOADS
    response_payload: Any = None
    error_message: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    path: str | None = None  # the raw path, IDs included, without the query string
    request_id: str | None = None  # upstream x-request-id
    call_id: str | None = None  # shared by the attempts of one logical call
    attempt: int | None = None  # 1 for the first try
    route: str | None = None  # gateway | direct
    cache_status: str | None = None  # hit | miss | bypass, set by the cache layer
    # The body facts (BodyFacts), here in the order `--json` has always printed them.
    thread_id: str | None = None
    run_id: str | None = None
    assistant_id: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    source: str | None = "aigw"  # who wrote the row; NULL for the seed app's own inserts

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


# LogRecord's fields in declaration order: the order the local store selects a row in.
RECORD_FIELDS = tuple(f.name for f in fields(LogRecord))


class RecordSink(Protocol):
    """Where the logging layers hand each row (the store's CallLog); closed after the last."""

    def __call__(self, record: LogRecord) -> None: ...

    def close(self) -> int: ...
