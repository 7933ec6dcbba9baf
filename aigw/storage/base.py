"""The storage contract: LogRecord, the Repository interface and the Mirror protocol.

Commands and services see only these types; which store is behind them (the local SQLite
outbox, a direct Postgres connection, Supabase over REST) is decided in `aigw.storage`.

A Repository keeps call log rows. The local store is also an outbox: every row is written there
first and stays *pending* until a sync has copied it to the remote store. A remote Repository is
its own destination, so nothing is ever pending there (`pending()` is empty, `mark_synced` a
no-op), and its `write` is an idempotent upsert on `id` — the property sync relies on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from aigw.common.log_record import LogRecord, is_uuid
from aigw.errors import AigwError, ExitCode

if TYPE_CHECKING:
    from aigw.storage.aggregates import GroupStats, MetricsQuery, ModelTokens, UsageStats

STATUS_CLASSES = {"1xx": (100, 199), "2xx": (200, 299), "3xx": (300, 399)}
STATUS_CLASSES |= {"4xx": (400, 499), "5xx": (500, 599)}


def status_range(status: str | int) -> tuple[int, int] | None:
    """`2xx` → (200, 299), `429` → (429, 429); `network` → None (no status code at all)."""
    text = str(status).strip().lower()
    if text in STATUS_CLASSES:
        return STATUS_CLASSES[text]
    if text in ("network", "none", "error"):
        return None
    if text.isdigit() and 100 <= int(text) <= 599:
        return int(text), int(text)
    raise ValueError(f"status must be 2xx, 4xx, 5xx, a code such as 429, or network: {status!r}")


class LogFilter(NamedTuple):
    """What to read: a time window and equality filters; newest first, at most `limit` rows.

    `agent` matches as `aigw metrics --agent` does on the same store: the agents row id, the
    assistant id (asst_…), the agents row id through the assistant of rows without one, and on
    the remote store an agent's name too; `status` is what `status_range` understands
    (validate it there before building a filter).
    """

    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    endpoint: str | None = None
    status: str | None = None
    method: str | None = None
    agent: str | None = None
    limit: int | None = 100
    model: str | None = None


def filter_sql(
    where: LogFilter,
    *,
    mark: str,
    when: Callable[[datetime], Any],
    agent_rows: str,
) -> tuple[str, list[Any]]:
    """The WHERE clause for a LogFilter, in each backend's dialect.

    `mark` is the placeholder (`?` or `%s`), `when` converts a time to the stored value,
    `agent_rows` is the store's condition for an agent's rows, the one its metrics use: every
    placeholder in it takes the agent.
    """
    parts: list[str] = []
    params: list[Any] = []
    if where.since is not None:
        parts.append(f"created_at >= {mark}")
        params.append(when(where.since))
    if where.until is not None:
        parts.append(f"created_at < {mark}")
        params.append(when(where.until))
    if where.endpoint is not None:
        parts.append(f"endpoint = {mark}")
        params.append(where.endpoint)
    if where.method is not None:
        parts.append(f"method = {mark}")
        params.append(where.method.upper())
    if where.status is not None:
        bounds = status_range(where.status)
        if bounds is None:
            parts.append("status_code IS NULL")
        else:
            parts.append(f"status_code BETWEEN {mark} AND {mark}")
            params += list(bounds)
    if where.agent is not None:
        parts.append(agent_rows)
        params += [where.agent] * agent_rows.count(mark)
    if where.model is not None:
        parts.append(f"model = {mark}")
        params.append(where.model)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


class SetAside(NamedTuple):
    """A local row sync does not send: the remote database refused it, or it is malformed."""

    seq: int  # its position in the local store
    id: str
    reason: str


class RowsNotWritten(Exception):
    """Log rows the local store could not take; the others of the same write were stored."""

    def __init__(self, records: list[LogRecord], cause: BaseException):
        super().__init__(f"{len(records)} log row(s) refused: {type(cause).__name__}: {cause}")
        self.records = records


class PendingBatch(NamedTuple):
    """Rows waiting for the remote store, and the outbox position of the last of them."""

    records: list[LogRecord]
    last: int  # what mark_synced takes once these rows are in the remote store
    seqs: Sequence[int] = ()  # each record's position, in the same order (local store only)
    malformed: Sequence[SetAside] = ()  # rows in the batch that cannot be read as records


class RowsRefused(AigwError):
    """The remote database refused the data of a batch (a value out of range, a constraint),
    not the connection: sending the rows without the offending ones would succeed."""

    def __init__(self, message: str):
        super().__init__(message, code=ExitCode.DATABASE)


class Repository(Protocol):
    """Where call log rows live. Small on purpose; every backend passes tests/test_storage.py."""

    def write(self, records: Sequence[LogRecord]) -> None:
        """Store the records in one short transaction. Remote stores leave a known `id` as it
        is (sync re-sends after an interruption); the local one is handed each record once and
        stores the others when it refuses one (raising RowsNotWritten with those it refused)."""

    def records(self, where: LogFilter) -> list[LogRecord]:
        """Rows matching `where`, newest first."""

    def get(self, record_id: str) -> LogRecord | None:
        """The row with this id, or None."""

    def ids_between(self, low: str, high: str, limit: int) -> list[str]:
        """Up to `limit` row ids from `low` to `high` (both ids; `id_prefix_range` makes them)."""

    def pending(self, limit: int, after: int | None = None) -> PendingBatch:
        """The next rows not yet copied to the remote store, in the order they were written
        (always empty on a remote store); `after`: the previous batch's `last`."""

    def pending_count(self) -> int:
        """How many rows wait to be synced (always 0 on a remote store)."""

    def mark_synced(self, through: int) -> None:
        """Every row up to a batch's `last` is in the remote store now."""

    def prune(self, older_than: datetime) -> int:
        """Delete rows created before `older_than`; returns how many went."""

    # -- aggregate reads for `aigw metrics`, computed in the database (storage/aggregates.py)
    def metrics(self, query: MetricsQuery) -> list[GroupStats]:
        """Per-group, per-hour and total stats of the window (see sql/0002_metrics.sql)."""

    def usage(self, query: MetricsQuery) -> list[UsageStats]:
        """Tokens per (agent, model) in the window, with the seed's estimate where none."""

    def aggregates(self, query: MetricsQuery) -> tuple[list[GroupStats], list[UsageStats]]:
        """`metrics` and `usage` together, concurrently where the store can."""

    def model_trend(self, query: MetricsQuery) -> list[ModelTokens]:
        """Recorded tokens per (trend bucket, model) of the window (sql/0008)."""

    def count_before(self, older_than: datetime) -> int:
        """How many rows `prune(older_than)` would delete."""

    def close(self) -> None:
        """Release the connection; the repository is not used again."""


class RemoteDestination:
    """The outbox part of the Repository for a remote store: rows are synced *to* it, so none
    ever waits there for sync."""

    def pending(self, limit: int, after: int | None = None) -> PendingBatch:
        """Nothing: no row waits for sync in the remote store."""
        return PendingBatch([], after or 0)

    def pending_count(self) -> int:
        """Always 0: no row waits for sync in the remote store."""
        return 0

    def mark_synced(self, through: int) -> None:
        """Nothing to mark: the remote store is where rows are synced to."""
        return None


class Mirror(Protocol):
    """The seed's agents/conversations/messages tables, written by the full-surface commands."""

    def upsert_agent(
        self, *, openai_assistant_id: str, name: str, instructions: str | None, model: str
    ) -> str:
        """The agents.id of the row for this assistant, created or updated."""

    def find_agent(self, ref: str) -> str | None:
        """agents.id by agents.id, name or openai_assistant_id; None when unknown."""

    def user_exists(self, user_id: str) -> bool:
        """Whether `user_id` is a user of auth.users (a conversation's owner must be)."""

    def insert_conversation(self, *, agent_id: str, user_id: str, openai_thread_id: str) -> str:
        """The conversations.id for this thread (the existing one when already mirrored)."""

    def insert_message(
        self, *, openai_thread_id: str, openai_message_id: str, role: str, content: str
    ) -> None:
        """Upsert on openai_message_id; a no-op when the thread has no conversation row."""


def id_prefix_range(prefix: str) -> tuple[str, str] | None:
    """The lowest and highest ids that start with `prefix`, or None if no id can."""
    prefix = prefix.strip().lower()
    if len(prefix) > len(_LOWEST_ID):
        return None
    low = prefix + _LOWEST_ID[len(prefix) :]
    high = prefix + _HIGHEST_ID[len(prefix) :]
    return (low, high) if is_uuid(low) and is_uuid(high) else None


_LOWEST_ID = "00000000-0000-0000-0000-000000000000"
_HIGHEST_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"


def without_nul(value: Any) -> Any:
    """Postgres text and jsonb refuse NUL characters: replace them rather than lose the row."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


class RememberingMirror(Mirror):
    """A Mirror that tells the local store which agents row each assistant has: the logging
    layer then fills a row's `agent_id` from that local map, never asking the remote store."""

    def __init__(self, inner: Mirror, remember: Callable[[str, str, str | None], None]):
        self.inner = inner
        self.remember = remember

    def upsert_agent(
        self, *, openai_assistant_id: str, name: str, instructions: str | None, model: str
    ) -> str:
        """The inner mirror's agents.id for the assistant, remembered locally."""
        agent_id = self.inner.upsert_agent(
            openai_assistant_id=openai_assistant_id,
            name=name,
            instructions=instructions,
            model=model,
        )
        self.remember(openai_assistant_id, agent_id, model)
        return agent_id

    def find_agent(self, ref: str) -> str | None:
        """The inner mirror's answer; an assistant's agents.id is remembered locally."""
        agent_id = self.inner.find_agent(ref)
        if agent_id is not None and ref.startswith("asst_"):
            self.remember(ref, agent_id, None)  # the model stays as last remembered
        return agent_id

    def user_exists(self, user_id: str) -> bool:
        """The inner mirror's answer."""
        return self.inner.user_exists(user_id)

    def insert_conversation(self, *, agent_id: str, user_id: str, openai_thread_id: str) -> str:
        """The inner mirror's conversations.id for the thread."""
        return self.inner.insert_conversation(
            agent_id=agent_id, user_id=user_id, openai_thread_id=openai_thread_id
        )

    def insert_message(
        self, *, openai_thread_id: str, openai_message_id: str, role: str, content: str
    ) -> None:
        """Passed on to the inner mirror."""
        self.inner.insert_message(
            openai_thread_id=openai_thread_id,
            openai_message_id=openai_message_id,
            role=role,
            content=content,
        )
