"""The bridge's state in Postgres/Supabase (sql/0006_bridge.sql): shared by gateway instances.

Assistants are also kept in the seed's `agents` table by openai_assistant_id, so the seed's
queries (cost per agent, …) see them. Guards lock the rows they read (FOR UPDATE), so two
instances cannot both pass the same one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aigw.bridge.store import (
    ACTIVE_SQL,
    TABLES,
    Expect,
    Guard,
    IdleThread,
    Kind,
    SqlReads,
    ThreadBusy,
    row_values,
    upsert_sql,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

_AGENT_UPSERT = """
INSERT INTO agents (name, openai_assistant_id, instructions, model) VALUES (%s, %s, %s, %s)
ON CONFLICT (openai_assistant_id) DO UPDATE
  SET name = excluded.name, instructions = excluded.instructions, model = excluded.model
RETURNING id
"""


class PostgresBridgeStore(SqlReads):
    mark = "%s"

    def __init__(
        self,
        url: str,
        *,
        lease_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        max_connections: int = 8,
    ):
        self.url = url
        self.lease_s = lease_s
        self.clock = clock
        self.max_connections = max_connections
        self._pool: AsyncConnectionPool | None = None

    async def open(self) -> None:
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        from aigw.errors import AigwError, ExitCode
        from aigw.storage.postgres import describe_url, first_line

        try:  # one connection first: a clear error now rather than the pool's retries
            first = await psycopg.AsyncConnection.connect(self.url, connect_timeout=5)
        except psycopg.Error as error:
            raise AigwError(
                f"the Assistants bridge cannot reach its database at {describe_url(self.url)}: "
                f"{first_line(error)}",
                code=ExitCode.DATABASE,
                hint="check SUPABASE_DB_URL / DATABASE_URL, and run `aigw migrate` first",
            ) from None
        async with first:
            cursor = await first.execute("SELECT to_regclass('bridge_runs') IS NOT NULL")
            row = await cursor.fetchone()
        if not (row and row[0]):
            raise AigwError(
                f"the database at {describe_url(self.url)} has no Assistants bridge tables",
                code=ExitCode.DATABASE,
                hint="run `aigw migrate` (sql/0006_bridge.sql adds them)",
            )
        # prepare_threshold=None: Supabase's pooler in transaction mode cannot keep them.
        self._pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self.max_connections,
            kwargs={"autocommit": True, "prepare_threshold": None},
            open=False,
            timeout=10.0,
        )
        await self._pool.open(wait=True, timeout=10.0)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> AsyncConnectionPool:
        assert self._pool is not None, "open() first"
        return self._pool

    async def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    async def write(
        self, objects: Sequence[tuple[Kind, dict[str, Any]]], guard: Guard = None
    ) -> bool:
        from psycopg.errors import UniqueViolation

        now = self.clock()
        try:
            # One pipeline for the whole transaction: BEGIN, the guard, the writes and COMMIT go
            # out together, waiting only for what a guard must read; any failure rolls back.
            async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
                if isinstance(guard, Expect):
                    cursor = await conn.execute(
                        "SELECT status FROM bridge_runs WHERE id = %s FOR UPDATE", (guard.run_id,)
                    )
                    row = await cursor.fetchone()
                    if row is None or row[0] not in guard.statuses:
                        return False
                elif isinstance(guard, IdleThread):
                    await self._idle(conn, guard.thread_id)
                for kind, body in objects:
                    if kind == "run" and body["status"] == "queued":
                        # A new run serialises with messages added to its thread.
                        await conn.execute(
                            "SELECT 1 FROM bridge_threads WHERE id = %s FOR UPDATE",
                            (body["thread_id"],),
                        )
                    values = row_values(kind, body, now, self.lease_s)
                    await conn.execute(upsert_sql(kind, "%s"), values)
                for kind, body in objects:
                    if kind == "assistant":
                        await self._agent(conn, body)
        except UniqueViolation as error:
            if "one_active_per_thread" in str(error):
                runs = [body for kind, body in objects if kind == "run"]
                raise ThreadBusy(runs[0]["thread_id"]) from None
            raise
        return True

    async def _idle(self, conn: AsyncConnection[Any], thread_id: str) -> None:
        await conn.execute("SELECT 1 FROM bridge_threads WHERE id = %s FOR UPDATE", (thread_id,))
        cursor = await conn.execute(
            f"SELECT 1 FROM bridge_runs WHERE thread_id = %s AND status IN ({ACTIVE_SQL})",
            (thread_id,),
        )
        if await cursor.fetchone():
            raise ThreadBusy(thread_id)

    async def _agent(self, conn: AsyncConnection[Any], assistant: dict[str, Any]) -> None:
        """The seed's agents row of this assistant (agents.name is required: the ID stands in)."""
        cursor = await conn.execute(
            _AGENT_UPSERT,
            (
                assistant.get("name") or assistant["id"],
                assistant["id"],
                assistant.get("instructions"),
                assistant.get("model"),
            ),
        )
        row = await cursor.fetchone()
        assert row is not None
        await conn.execute(
            "UPDATE bridge_assistants SET agent_id = %s WHERE id = %s", (row[0], assistant["id"])
        )

    async def delete(self, kind: Kind, object_id: str) -> bool:
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                f"DELETE FROM {TABLES[kind].name} WHERE id = %s", (object_id,)
            )
            deleted = cursor.rowcount > 0
            if kind == "assistant":
                # The agents row goes too, unless the app's conversations still point at it.
                await conn.execute(
                    "DELETE FROM agents a WHERE openai_assistant_id = %s AND NOT EXISTS "
                    "(SELECT 1 FROM conversations c WHERE c.agent_id = a.id)",
                    (object_id,),
                )
        return deleted
