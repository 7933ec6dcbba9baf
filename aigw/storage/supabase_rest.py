"""The remote store through Supabase's REST API (supabase-py): logs and the mirror.

Used when SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are set and no direct Postgres URL is.
supabase-py is imported only here, lazily: it costs about a second to import.

Log batches are one `POST /rest/v1/ai_gateway_logs?on_conflict=id` with
`Prefer: return=minimal,resolution=ignore-duplicates` — an idempotent upsert. REST cannot
join auth.users, so when a batch is refused for a foreign key (23503) it is sent once more with
`user_id` NULL and unknown `agent_id`s NULL: the row is kept, the local copy keeps the user.
supabase-py's own retries are off: sync has its own policy and a time budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from aigw.common.log_record import COLUMNS, LogRecord, is_uuid
from aigw.errors import AigwError, ExitCode
from aigw.storage import aggregates
from aigw.storage.aggregates import GroupStats, MetricsQuery, ModelTokens, UsageStats
from aigw.storage.base import LogFilter, RemoteDestination, RowsRefused, status_range, without_nul

T = TypeVar("T")
_UUIDS = ("id", "call_id", "user_id", "agent_id")
FOREIGN_KEY_VIOLATION = "23503"
MISSING_FUNCTION = "PGRST202"  # PostgREST: no function of that name and arguments


def rest_row(record: LogRecord) -> dict[str, Any]:
    """A LogRecord as the REST API takes it: JSON values, times as ISO-8601."""
    row: dict[str, Any] = {}
    for name, value in zip(COLUMNS, record.values(), strict=True):
        if name == "created_at":
            value = value.isoformat()
        elif name == "latency_ms" and value is not None:
            value = round(value)
        elif name in _UUIDS and not is_uuid(value):
            value = None
        else:
            value = without_nul(value)
        row[name] = value
    return row


def record_from(row: dict[str, Any]) -> LogRecord:
    """A LogRecord from a row the REST API returned."""
    data: dict[str, Any] = {name: row.get(name) for name in COLUMNS}
    data["created_at"] = datetime.fromisoformat(str(data["created_at"]))
    if data["latency_ms"] is not None:
        data["latency_ms"] = float(data["latency_ms"])
    return LogRecord(**data)


def _rpc_args(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments as JSON for a PostgREST call: times as ISO-8601 text."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in args.items()}


class SupabaseRepository(RemoteDestination):
    """Repository and Mirror over supabase-py's PostgREST client, with the service role key."""

    def __init__(self, url: str, key: str, *, timeout: float = 10.0):
        import httpx
        from supabase import ClientOptions, create_client

        options = ClientOptions(
            # Our own client: the timeout may be under a second (supabase-py truncates its own
            # `timeout` option to whole seconds), and redirects are followed as supabase-py does.
            httpx_client=httpx.Client(timeout=timeout, follow_redirects=True),
            postgrest_client_retry=False,
            auto_refresh_token=False,
            persist_session=False,
        )
        self.url = url
        self.client = create_client(url, key, options)

    def _run(self, action: Callable[[], T]) -> T:
        """Run one request; REST and transport failures become AigwError (exit 8)."""
        import httpx
        from postgrest.exceptions import APIError

        try:
            return action()
        except APIError as exc:
            raise AigwError(
                f"Supabase refused the request: {exc.message} ({exc.code})",
                code=ExitCode.DATABASE,
            ) from exc
        except httpx.HTTPError as exc:
            raise AigwError(
                f"cannot reach Supabase at {self.url}: {type(exc).__name__}",
                code=ExitCode.DATABASE,
                hint="check SUPABASE_URL and the network",
            ) from exc

    def _table(self, name: str) -> Any:
        return self.client.table(name)

    # -- Repository ------------------------------------------------------------------------
    def write(self, records: Sequence[LogRecord]) -> None:
        """Upsert the rows on `id` in one request; a known id is left as it is."""
        if not records:
            return
        rows = [rest_row(record) for record in records]
        try:
            self._refusing(lambda: self._upsert_logs(rows))
        except RowsRefused as exc:
            if getattr(exc.__cause__, "code", None) != FOREIGN_KEY_VIOLATION:
                raise
            known = self._known_agents({r["agent_id"] for r in rows if r["agent_id"]})
            for row in rows:
                row["user_id"] = None
                if row["agent_id"] not in known:
                    row["agent_id"] = None
            self._refusing(lambda: self._upsert_logs(rows))

    def _refusing(self, action: Callable[[], T]) -> T:
        """`_run`, with a refusal of the data (SQLSTATE classes 22, 23) as RowsRefused, so
        sync can set the offending rows aside."""
        try:
            return self._run(action)
        except AigwError as exc:
            code = str(getattr(exc.__cause__, "code", None) or "")
            if code[:2] in ("22", "23"):
                raise RowsRefused(exc.message) from exc.__cause__
            raise

    def _upsert_logs(self, rows: list[dict[str, Any]]) -> Any:
        from postgrest.types import ReturnMethod

        return (
            self._table("ai_gateway_logs")
            .upsert(rows, on_conflict="id", ignore_duplicates=True, returning=ReturnMethod.minimal)
            .execute()
        )

    def _known_agents(self, ids: set[str]) -> set[str]:
        if not ids:
            return set()
        found = self._run(
            lambda: self._table("agents").select("id").in_("id", sorted(ids)).execute()
        )
        return {row["id"] for row in found.data}

    def records(self, where: LogFilter) -> list[LogRecord]:
        """Rows matching `where`, newest first."""
        query = self._table("ai_gateway_logs").select(", ".join(COLUMNS))
        if where.since is not None:
            query = query.gte("created_at", where.since.isoformat())
        if where.until is not None:
            query = query.lt("created_at", where.until.isoformat())
        if where.endpoint is not None:
            query = query.eq("endpoint", where.endpoint)
        if where.method is not None:
            query = query.eq("method", where.method.upper())
        if where.status is not None:
            bounds = status_range(where.status)
            if bounds is None:
                query = query.is_("status_code", "null")
            else:
                query = query.gte("status_code", bounds[0]).lte("status_code", bounds[1])
        if where.agent is not None:
            query = query.or_(self._agent_match(where.agent))
        if where.model is not None:
            query = query.eq("model", where.model)
        query = query.order("created_at", desc=True).order("id")
        if where.limit is not None:
            query = query.limit(where.limit)
        return [record_from(row) for row in self._run(query.execute).data]

    def _agent_match(self, agent: str) -> str:
        """The PostgREST `or` filter for an agent's rows, as aigw_metrics finds them: by id,
        by assistant id, by name, and by id through the assistant of rows without agent_id."""
        lookup = self._table("agents").select("id, name, openai_assistant_id")
        if is_uuid(agent):
            lookup = lookup.or_(f"id.eq.{agent},name.eq.{_quoted(agent)}")
        else:
            lookup = lookup.eq("name", agent)
        found = self._run(lookup.execute).data
        named = [row["id"] for row in found if row.get("name") == agent]
        by_id = [row["openai_assistant_id"] for row in found if row["id"] == agent]
        parts = [f"assistant_id.eq.{_quoted(agent)}"]
        if is_uuid(agent):
            parts.append(f"agent_id.eq.{agent}")
        if named:
            parts.append(f"agent_id.in.({','.join(named)})")
        assistants = [_quoted(a) for a in by_id if a]
        if assistants:
            parts.append(f"and(agent_id.is.null,assistant_id.in.({','.join(assistants)}))")
        return ",".join(parts)

    def get(self, record_id: str) -> LogRecord | None:
        """The row with this id, or None (also for an id that is not a UUID)."""
        if not is_uuid(record_id):
            return None
        query = self._table("ai_gateway_logs").select(", ".join(COLUMNS)).eq("id", record_id)
        rows = self._run(query.execute).data
        return record_from(rows[0]) if rows else None

    def ids_between(self, low: str, high: str, limit: int) -> list[str]:
        """Up to `limit` ids from `low` to `high`, in order."""
        query = (
            self._table("ai_gateway_logs")
            .select("id")
            .gte("id", low)
            .lte("id", high)
            .order("id")
            .limit(limit)
        )
        return [str(row["id"]) for row in self._run(query.execute).data]

    def prune(self, older_than: datetime) -> int:
        """Delete the rows created before `older_than`; how many went."""
        from postgrest.types import CountMethod, ReturnMethod

        query = (
            self._table("ai_gateway_logs")
            .delete(count=CountMethod.exact, returning=ReturnMethod.minimal)
            .lt("created_at", older_than.isoformat())
        )
        return int(self._run(query.execute).count or 0)

    # -- aggregate reads: the SQL functions of sql/0002_metrics.sql, through rpc() ---------
    def metrics(self, query: MetricsQuery) -> list[GroupStats]:
        """The window's stats, from the aigw_metrics function over RPC."""
        args = _rpc_args(aggregates.metrics_args(query))
        return aggregates.group_stats(self._run(self.client.rpc("aigw_metrics", args).execute).data)

    def usage(self, query: MetricsQuery) -> list[UsageStats]:
        """The window's token usage, from aigw_metrics_usage over RPC."""
        args = _rpc_args(aggregates.usage_args(query))
        rows = self._run(self.client.rpc("aigw_metrics_usage", args).execute).data
        return aggregates.usage_stats(rows)

    def aggregates(self, query: MetricsQuery) -> tuple[list[GroupStats], list[UsageStats]]:
        """`metrics` and `usage`, one request after the other."""
        return self.metrics(query), self.usage(query)

    def model_trend(self, query: MetricsQuery) -> list[ModelTokens]:
        """The recorded tokens per (bucket, model); none before sql/0008 (an empty cost chart)."""
        from postgrest.exceptions import APIError

        args = _rpc_args(aggregates.model_trend_args(query))

        def trend() -> Any:
            try:
                return self.client.rpc("aigw_metrics_model_trend", args).execute().data
            except APIError as exc:
                if exc.code == MISSING_FUNCTION:
                    return []
                raise

        return aggregates.model_tokens(self._run(trend))

    def count_before(self, older_than: datetime) -> int:
        """How many rows `prune(older_than)` would delete, counted in the database."""
        args = {"p_before": older_than.isoformat()}
        count: Any = self._run(self.client.rpc("aigw_logs_count_before", args).execute).data
        return int(count)

    def close(self) -> None:
        """Close the HTTP session of the REST client."""
        session = getattr(self.client.postgrest, "session", None)
        if session is not None:
            session.close()

    # -- Mirror ----------------------------------------------------------------------------
    def upsert_agent(
        self, *, openai_assistant_id: str, name: str, instructions: str | None, model: str
    ) -> str:
        """The agents.id of the assistant's row, inserted or updated."""
        row = {
            "openai_assistant_id": openai_assistant_id,
            "name": name,
            "instructions": instructions,
            "model": model,
        }
        query = self._table("agents").upsert(row, on_conflict="openai_assistant_id")
        return str(self._run(query.execute).data[0]["id"])

    def find_agent(self, ref: str) -> str | None:
        """agents.id by id, openai_assistant_id or name; None when unknown."""
        lookups = [("id", ref)] if is_uuid(ref) else []
        lookups += [("openai_assistant_id", ref), ("name", ref)]
        for column, value in lookups:
            query = (
                self._table("agents")
                .select("id")
                .eq(column, value)
                .order("created_at", desc=True)
                .limit(1)
            )
            rows = self._run(query.execute).data
            if rows:
                return str(rows[0]["id"])
        return None

    def user_exists(self, user_id: str) -> bool:
        """GET /auth/v1/admin/users/{id} (REST cannot read auth.users): 404 means no such user."""
        from supabase_auth.errors import AuthApiError

        try:
            self.client.auth.admin.get_user_by_id(user_id)
        except AuthApiError as exc:
            if exc.status == 404:
                return False
            raise AigwError(
                f"Supabase refused the user lookup: {exc.message}", code=ExitCode.DATABASE
            ) from exc
        return True

    def insert_conversation(self, *, agent_id: str, user_id: str, openai_thread_id: str) -> str:
        """The conversations.id for the thread, inserted if new."""
        row = {"agent_id": agent_id, "user_id": user_id, "openai_thread_id": openai_thread_id}
        query = self._table("conversations").upsert(
            row, on_conflict="openai_thread_id", ignore_duplicates=True
        )
        rows = self._run(query.execute).data
        if not rows:  # already mirrored
            rows = self._conversation(openai_thread_id)
        return str(rows[0]["id"])

    def forget(
        self,
        log_ids: Sequence[str],
        *,
        openai_assistant_id: str | None = None,
        openai_thread_id: str | None = None,
    ) -> int:
        """Delete the named log rows, the thread's conversation and messages, and the
        assistant's agents row unless a conversation still needs it; how many rows went."""
        from postgrest.exceptions import APIError
        from postgrest.types import CountMethod, ReturnMethod

        def delete(table: str) -> Any:
            return self._table(table).delete(
                count=CountMethod.exact, returning=ReturnMethod.minimal
            )

        gone = 0
        ids = [i for i in log_ids if is_uuid(i)]
        for start in range(0, len(ids), 100):
            query = delete("ai_gateway_logs").in_("id", ids[start : start + 100])
            gone += int(self._run(query.execute).count or 0)
        if openai_thread_id is not None:
            for row in self._conversation(openai_thread_id):
                query = delete("messages").eq("conversation_id", row["id"])
                gone += int(self._run(query.execute).count or 0)
            query = delete("conversations").eq("openai_thread_id", openai_thread_id)
            gone += int(self._run(query.execute).count or 0)
        if openai_assistant_id is not None:
            query = delete("agents").eq("openai_assistant_id", openai_assistant_id)

            def delete_agent() -> int:
                try:
                    return int(query.execute().count or 0)
                except APIError as exc:
                    # conversations.agent_id refuses the delete while another conversation
                    # refers to the agent: kept, as the Postgres path keeps it
                    if exc.code == FOREIGN_KEY_VIOLATION:
                        return 0
                    raise

            gone += self._run(delete_agent)
        return gone

    def _conversation(self, openai_thread_id: str) -> list[dict[str, Any]]:
        query = self._table("conversations").select("id").eq("openai_thread_id", openai_thread_id)
        return list(self._run(query.execute).data)

    def insert_message(
        self, *, openai_thread_id: str, openai_message_id: str, role: str, content: str
    ) -> None:
        """Upsert the message under its thread's conversation (none: nothing)."""
        conversation = self._conversation(openai_thread_id)
        if not conversation:
            return
        row = {
            "conversation_id": conversation[0]["id"],
            "openai_message_id": openai_message_id,
            "role": role,
            "content": without_nul(content),
        }
        query = self._table("messages").upsert(row, on_conflict="openai_message_id")
        self._run(query.execute)


def _quoted(value: str) -> str:
    """A value inside a PostgREST filter, quoted (names may hold commas or parentheses)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
