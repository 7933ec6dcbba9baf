"""The remote store over a direct Postgres connection (Supabase's or any): logs and the mirror.

Connections are made for the transaction pooler too: autocommit, no server-side prepared
statements (`prepare_threshold=None`), and temp tables dropped at the end of the transaction
that made them. Writes COPY a batch into such a temp table, then insert it with
`ON CONFLICT (id) DO NOTHING`, so sending the same rows twice changes nothing.

Foreign keys: `user_id` references auth.users and `agent_id` agents. A row is never refused for
them — a user_id that is not a known auth user (or not a UUID) is stored as NULL remotely (the
local row keeps it), an unknown agent_id likewise, and a missing agent_id is filled from the
agents row of the record's assistant when the mirror has one.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aigw.common.log_record import COLUMNS, UUID_SHAPE, LogRecord, is_uuid
from aigw.errors import AigwError, ExitCode
from aigw.storage import aggregates
from aigw.storage.aggregates import GroupStats, MetricsQuery, ModelTokens, UsageStats
from aigw.storage.base import LogFilter, RemoteDestination, RowsRefused, filter_sql, without_nul

_UUIDS = ("id", "call_id", "user_id", "agent_id")
_LAST_UUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
_COPY_COLUMNS = ", ".join(COLUMNS)
# How each column is taken from the batch; the foreign keys are resolved, never refused.
_FROM_BATCH = {
    "user_id": "(SELECT u.id FROM auth.users u WHERE u.id = b.user_id)",
    "agent_id": "COALESCE((SELECT a.id FROM agents a WHERE a.id = b.agent_id),"
    " (SELECT a.id FROM agents a WHERE a.openai_assistant_id = b.assistant_id))",
}
_INSERT_BATCH = (
    f"INSERT INTO ai_gateway_logs ({_COPY_COLUMNS}) "
    f"SELECT {', '.join(_FROM_BATCH.get(c, f'b.{c}') for c in COLUMNS)} "
    "FROM aigw_log_batch b ON CONFLICT (id) DO NOTHING"
)


def describe_url(url: str) -> str:
    """`user@host:port/dbname` of a Postgres URL or key=value string, never the password."""
    from urllib.parse import urlsplit

    from psycopg.conninfo import conninfo_to_dict

    from aigw.errors import UsageError

    if url.startswith(("postgres://", "postgresql://")):
        # Read as a URL, whose host follows the last "@": libpq would take the tail of a
        # password holding an unencoded "@" for the host, and show it.
        try:
            parts = urlsplit(url)
            url_host, url_port = parts.hostname, parts.port
        except ValueError:
            raise UsageError("the database URL is not a valid postgresql:// URL") from None
        user = f"{parts.username}@" if parts.username else ""
        return f"{user}{url_host or 'localhost'}:{url_port or 5432}/{parts.path.lstrip('/')}"
    try:
        params = conninfo_to_dict(url)
    except Exception:
        raise UsageError(
            "the database URL is not a postgresql:// URL or a key=value connection string"
        ) from None
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    user = f"{params['user']}@" if params.get("user") else ""
    return f"{user}{host}:{port}/{params.get('dbname') or ''}"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def scrub(message: str, url: str) -> str:
    """A server or driver message with the URL's password masked, should it appear."""
    from psycopg.conninfo import conninfo_to_dict

    from aigw.settings import mask_url

    try:
        password = conninfo_to_dict(url).get("password")
    except Exception:
        password = None
    message = message.replace(url, mask_url(url))
    if password:
        message = message.replace(str(password), "****")
    return message


def connect(url: str, *, timeout: float = 5.0, application_name: str = "aigw") -> Any:
    """A psycopg connection fit for the pooler (autocommit, no server-side prepared statements);
    a failure is an AigwError with exit code 8 that names the server, never the password."""
    import psycopg

    target = describe_url(url)
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
            application_name=application_name,
        )
    except psycopg.Error as exc:
        raise AigwError(
            f"cannot connect to {target}: {scrub(first_line(exc), url)}",
            code=ExitCode.DATABASE,
            hint="check SUPABASE_DB_URL / DATABASE_URL and that the server is up",
        ) from None


def _uuid_or_none(value: str | None) -> str | None:
    return value if value is not None and UUID_SHAPE.match(value) else None


def _text(value: str | None) -> str | None:
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def _jsonb(value: Any) -> str | None:
    return None if value is None else json.dumps(without_nul(value), ensure_ascii=False)


def remote_row(r: LogRecord) -> tuple[Any, ...]:
    """A LogRecord as the remote columns want it, in COLUMNS order: whole milliseconds, valid
    UUIDs or NULL, JSON text, no NUL characters. Written out by hand: it runs once per row
    synced, and the generic version was the slowest step of a sync."""
    return (
        _uuid_or_none(r.id),
        r.created_at,
        _text(r.endpoint),
        _text(r.method),
        r.status_code,
        None if r.latency_ms is None else round(r.latency_ms),
        _jsonb(r.request_payload),
        _jsonb(r.response_payload),
        _text(r.error_message),
        _uuid_or_none(r.user_id),
        _uuid_or_none(r.agent_id),
        _text(r.path),
        _text(r.request_id),
        _uuid_or_none(r.call_id),
        r.attempt,
        _text(r.route),
        _text(r.cache_status),
        _text(r.thread_id),
        _text(r.run_id),
        _text(r.assistant_id),
        _text(r.model),
        r.prompt_tokens,
        r.completion_tokens,
        r.total_tokens,
        _text(r.source),
    )


# An agent's rows as aigw_metrics finds them (sql/0003): by its id or assistant id, by its
# name, and by its id through the assistant of rows that have no agent_id.
_AGENT_ROWS = (
    "(agent_id::text = %s OR assistant_id = %s"
    " OR agent_id IN (SELECT f.id FROM agents f WHERE f.name = %s) OR (agent_id IS NULL AND"
    " assistant_id IN (SELECT a.openai_assistant_id FROM agents a WHERE a.id::text = %s)))"
)


def where_sql(where: LogFilter) -> tuple[str, list[Any]]:
    """The WHERE clause and parameters of a LogFilter, in psycopg's placeholders."""
    return filter_sql(where, mark="%s", when=lambda t: t, agent_rows=_AGENT_ROWS)


def record_from(row: Sequence[Any]) -> LogRecord:
    """A LogRecord from a row selected in COLUMNS order."""
    data = dict(zip(COLUMNS, row, strict=True))
    for name in _UUIDS:
        if data[name] is not None:
            data[name] = str(data[name])
    if data["latency_ms"] is not None:
        data["latency_ms"] = float(data["latency_ms"])
    return LogRecord(**data)


# SET LOCAL for both, in one round trip
_SETTINGS = "SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true)"


def _call(conn: Any, function: str, args: dict[str, Any], *, optional: bool = False) -> list[Any]:
    """The rows of one of aigw's SQL functions (sql/0002_metrics.sql), called in named
    notation for the optional arguments; none if it is `optional` and the database lacks it."""
    import psycopg

    named = ", ".join(f"{name} => %({name})s" for name in args)
    try:
        # JIT compilation costs up to a second and these queries never run long enough to
        # repay it; the window's sorts fit in memory with a little more work_mem. SET LOCAL
        # keeps both inside this transaction (safe with the pooler).
        with conn.transaction():
            conn.execute(_SETTINGS)
            return list(conn.execute(f"SELECT * FROM public.{function}({named})", args))
    except psycopg.errors.UndefinedFunction:
        if optional:
            return []
        raise AigwError(
            "the database lacks aigw's metrics functions of this version (sql/0002, 0008)",
            code=ExitCode.DATABASE,
            hint="run `aigw migrate` against it, or pass --local",
        ) from None
    except psycopg.Error as exc:
        raise AigwError(
            f"metrics query failed: {first_line(exc)}", code=ExitCode.DATABASE
        ) from None


def _usage(conn: Any, query: MetricsQuery) -> list[UsageStats]:
    return aggregates.usage_stats(_call(conn, "aigw_metrics_usage", aggregates.usage_args(query)))


class PostgresRepository(RemoteDestination):
    """Repository and Mirror over one psycopg connection to the remote database."""

    def __init__(self, url: str, *, timeout: float = 5.0):
        self.url = url
        self.timeout = timeout
        self.conn = connect(url, timeout=timeout)

    # -- Repository ------------------------------------------------------------------------
    def write(self, records: Sequence[LogRecord]) -> None:
        """Raises RowsRefused when the database refuses a value or a constraint (SQLSTATE
        classes 22 and 23) rather than the connection: sync then sets those rows aside."""
        import psycopg

        if not records:
            return
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE aigw_log_batch (LIKE ai_gateway_logs) ON COMMIT DROP"
                )
                with cur.copy(f"COPY aigw_log_batch ({_COPY_COLUMNS}) FROM STDIN") as copy:
                    for record in records:
                        copy.write_row(remote_row(record))
                cur.execute(_INSERT_BATCH)
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            raise RowsRefused(f"Postgres refused: {first_line(exc)} ({exc.sqlstate})") from exc

    def records(self, where: LogFilter) -> list[LogRecord]:
        """Rows matching `where`, newest first."""
        clause, params = where_sql(where)
        sql = f"SELECT {_COPY_COLUMNS} FROM ai_gateway_logs{clause} ORDER BY created_at DESC, id"
        if where.limit is not None:
            sql += " LIMIT %s"
            params.append(where.limit)
        return [record_from(row) for row in self.conn.execute(sql, params)]

    # -- following in commit order (sql/0007_logs_commit_order.sql) ----------------------
    def commit_ordered(self) -> bool:
        """Whether the table records each row's transaction (0007 applied)."""
        row = self.conn.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = 'ai_gateway_logs'::regclass "
            "AND attname = 'xact_id' AND NOT attisdropped"
        ).fetchone()
        return row is not None

    def _horizon(self) -> int:
        """The oldest transaction still open: every row of an older one is committed (or gone
        with its rollback) and visible to any later read."""
        row = self.conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
        return int(row[0])

    def follow_position(self) -> tuple[int, str]:
        """The position before every row a follower has not seen yet: (transaction, id)."""
        return self._horizon() - 1, _LAST_UUID

    def committed_after(
        self, where: LogFilter, after: tuple[int, str], limit: int
    ) -> tuple[list[LogRecord], tuple[int, str]]:
        """Rows matching `where` (its time window and limit aside) after position `after`, in
        the order of their transactions, at most `limit`; and the position read up to."""
        horizon = self._horizon()  # read first: what it promises holds for the later read
        clause, params = where_sql(where._replace(since=None, until=None, limit=None))
        clause = f"{clause} AND" if clause else " WHERE"
        sql = (
            f"SELECT {_COPY_COLUMNS}, xact_id::text FROM ai_gateway_logs{clause} "
            "xact_id < %s::text::xid8 AND (xact_id, id) > (%s::text::xid8, %s::uuid) "
            "ORDER BY xact_id, id LIMIT %s"
        )
        rows = self.conn.execute(sql, [*params, str(horizon), str(after[0]), after[1], limit])
        rows = rows.fetchall()
        if len(rows) == limit:
            reached = (int(rows[-1][-1]), str(rows[-1][0]))
        else:  # every row of a transaction before the horizon has been read
            reached = max(after, (horizon - 1, _LAST_UUID))
        return [record_from(row[:-1]) for row in rows], reached

    def get(self, record_id: str) -> LogRecord | None:
        """The row with this id, or None (also for an id that is not a UUID)."""
        if not is_uuid(record_id):
            return None
        sql = f"SELECT {_COPY_COLUMNS} FROM ai_gateway_logs WHERE id = %s"
        row = self.conn.execute(sql, (record_id,)).fetchone()
        return record_from(row) if row else None

    def ids_between(self, low: str, high: str, limit: int) -> list[str]:
        """Up to `limit` ids from `low` to `high`, in order."""
        sql = "SELECT id FROM ai_gateway_logs WHERE id BETWEEN %s AND %s ORDER BY id LIMIT %s"
        return [str(row[0]) for row in self.conn.execute(sql, (low, high, limit))]

    def prune(self, older_than: datetime) -> int:
        """Delete the rows created before `older_than`; how many went."""
        cur = self.conn.execute("DELETE FROM ai_gateway_logs WHERE created_at < %s", (older_than,))
        return cur.rowcount

    # -- aggregate reads: the SQL functions of sql/0002_metrics.sql ------------------------
    def metrics(self, query: MetricsQuery) -> list[GroupStats]:
        """The window's stats, computed by aigw_metrics in the database."""
        args = aggregates.metrics_args(query)
        return aggregates.group_stats(_call(self.conn, "aigw_metrics", args))

    def usage(self, query: MetricsQuery) -> list[UsageStats]:
        """The window's token usage, computed by aigw_metrics_usage in the database."""
        return _usage(self.conn, query)

    def aggregates(self, query: MetricsQuery) -> tuple[list[GroupStats], list[UsageStats]]:
        """Both reads at once: the usage on a second connection while this one computes the
        groups. The database gives each its own backend (and core), so the two overlap."""
        usage: list[UsageStats] = []
        failure: list[BaseException] = []

        def read_usage() -> None:
            try:
                conn = connect(self.url, timeout=self.timeout)
                try:
                    usage.extend(_usage(conn, query))
                finally:
                    conn.close()
            except BaseException as exc:  # re-raised in the caller's thread
                failure.append(exc)

        reader = threading.Thread(target=read_usage, name="aigw-usage", daemon=True)
        reader.start()
        try:
            stats = self.metrics(query)
        finally:
            reader.join()
        if failure:
            raise failure[0]
        return stats, usage

    def model_trend(self, query: MetricsQuery) -> list[ModelTokens]:
        """Tokens per (bucket, model), computed in the database; none before sql/0008 (an
        empty cost chart)."""
        args = aggregates.model_trend_args(query)
        rows = _call(self.conn, "aigw_metrics_model_trend", args, optional=True)
        return aggregates.model_tokens(rows)

    def count_before(self, older_than: datetime) -> int:
        """How many rows `prune(older_than)` would delete, counted in the database."""
        row = self.conn.execute("SELECT public.aigw_logs_count_before(%s)", (older_than,))
        return int(row.fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # -- Mirror ----------------------------------------------------------------------------
    def upsert_agent(
        self, *, openai_assistant_id: str, name: str, instructions: str | None, model: str
    ) -> str:
        """The agents.id of the assistant's row, inserted or updated."""
        row = self.conn.execute(
            "INSERT INTO agents (name, openai_assistant_id, instructions, model) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (openai_assistant_id) DO UPDATE SET "
            "name = excluded.name, instructions = excluded.instructions, model = excluded.model "
            "RETURNING id",
            (name, openai_assistant_id, instructions, model),
        ).fetchone()
        return str(row[0])

    def find_agent(self, ref: str) -> str | None:
        # An exact id wins over an assistant id, which wins over a name (names may repeat:
        # the newest agent of that name is meant).
        """agents.id by id, openai_assistant_id or name; None when unknown."""
        row = self.conn.execute(
            "SELECT id FROM agents WHERE id::text = %s OR openai_assistant_id = %s OR name = %s "
            "ORDER BY (id::text = %s) DESC, (openai_assistant_id IS NOT DISTINCT FROM %s) DESC, "
            "created_at DESC LIMIT 1",
            (ref, ref, ref, ref, ref),
        ).fetchone()
        return str(row[0]) if row else None

    def user_exists(self, user_id: str) -> bool:
        """Whether auth.users has this user."""
        row = self.conn.execute("SELECT 1 FROM auth.users WHERE id = %s", (user_id,)).fetchone()
        return row is not None

    def insert_conversation(self, *, agent_id: str, user_id: str, openai_thread_id: str) -> str:
        """The conversations.id for the thread, inserted if new."""
        row = self.conn.execute(
            "INSERT INTO conversations (agent_id, user_id, openai_thread_id) "
            "VALUES (%s, %s, %s) ON CONFLICT (openai_thread_id) DO NOTHING RETURNING id",
            (agent_id, user_id, openai_thread_id),
        ).fetchone()
        if row is None:  # already mirrored
            row = self.conn.execute(
                "SELECT id FROM conversations WHERE openai_thread_id = %s", (openai_thread_id,)
            ).fetchone()
        return str(row[0])

    def forget(
        self,
        log_ids: Sequence[str],
        *,
        openai_assistant_id: str | None = None,
        openai_thread_id: str | None = None,
    ) -> int:
        """Delete the named log rows, the thread's conversation and messages, and the
        assistant's agents row unless a conversation still needs it; how many rows went."""
        ids = [i for i in log_ids if is_uuid(i)]
        with self.conn.transaction():
            gone = self.conn.execute(
                "DELETE FROM ai_gateway_logs WHERE id = ANY(%s::uuid[])", (ids,)
            ).rowcount
            if openai_thread_id is not None:
                gone += self.conn.execute(
                    "DELETE FROM messages WHERE conversation_id IN "
                    "(SELECT id FROM conversations WHERE openai_thread_id = %s)",
                    (openai_thread_id,),
                ).rowcount
                gone += self.conn.execute(
                    "DELETE FROM conversations WHERE openai_thread_id = %s", (openai_thread_id,)
                ).rowcount
            if openai_assistant_id is not None:
                gone += self.conn.execute(
                    "DELETE FROM agents a WHERE a.openai_assistant_id = %s AND NOT EXISTS "
                    "(SELECT 1 FROM conversations c WHERE c.agent_id = a.id)",
                    (openai_assistant_id,),
                ).rowcount
        return gone

    def insert_message(
        self, *, openai_thread_id: str, openai_message_id: str, role: str, content: str
    ) -> None:
        """Upsert the message under its thread's conversation (none: nothing)."""
        self.conn.execute(
            "INSERT INTO messages (conversation_id, openai_message_id, role, content) "
            "SELECT c.id, %s, %s, %s FROM conversations c WHERE c.openai_thread_id = %s "
            "ON CONFLICT (openai_message_id) DO UPDATE SET "
            "role = excluded.role, content = excluded.content",
            (openai_message_id, role, without_nul(content), openai_thread_id),
        )
