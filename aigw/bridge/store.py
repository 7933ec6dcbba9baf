"""The bridge's durable state: one small interface, a SQLite and a Postgres implementation.

Objects are kept whole, in the API's shape (plain dicts), one table per kind; the columns
beside the body are what reads filter on. Writes are all-or-nothing and may carry a guard:
`Expect` (the stored run is still in one of these statuses: a cancel or a second instance
did not get there first) or `IdleThread` (no active run: messages may be added). Both
backends enforce "one active run per thread" with a unique index and raise ThreadBusy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

Kind = Literal["assistant", "thread", "message", "run", "step"]

ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
# Statuses of a run that some instance is working on (requires_action waits on the client).
IN_FLIGHT = ("queued", "in_progress", "cancelling")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]  # besides id and body, taken from the body (lease_until aside)


TABLES: dict[Kind, Table] = {
    "assistant": Table("bridge_assistants", ()),
    "thread": Table("bridge_threads", ()),
    "message": Table("bridge_messages", ("thread_id", "run_id")),
    "run": Table("bridge_runs", ("thread_id", "status", "lease_until")),
    "step": Table("bridge_run_steps", ("thread_id", "run_id")),
}


class ThreadBusy(Exception):
    """The thread has an active run (the database said so)."""

    def __init__(self, thread_id: str):
        super().__init__(thread_id)
        self.thread_id = thread_id


@dataclass(frozen=True)
class Expect:
    """Write only if the stored run `run_id` is in one of `statuses`."""

    run_id: str
    statuses: tuple[str, ...]


@dataclass(frozen=True)
class IdleThread:
    """Write only if thread `thread_id` has no active run (else ThreadBusy)."""

    thread_id: str


Guard = Expect | IdleThread | None


class BridgeStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, kind: Kind, object_id: str) -> dict[str, Any] | None: ...

    async def objects(
        self, kind: Kind, *, thread_id: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of `kind` in creation order, of one thread or run when given."""
        ...

    async def write(
        self, objects: Sequence[tuple[Kind, dict[str, Any]]], guard: Guard = None
    ) -> bool:
        """Insert or replace `objects` in one transaction; False (nothing written) when an
        Expect guard fails; ThreadBusy when a second active run would exist."""
        ...

    async def delete(self, kind: Kind, object_id: str) -> bool:
        """Delete one object (a thread with its messages, runs and steps)."""
        ...

    async def stale_runs(self, now: float, *, all_in_flight: bool) -> list[dict[str, Any]]:
        """Runs in flight whose lease ran out (every one in flight when `all_in_flight`)."""
        ...


def dump(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def load(text: str | bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(text)
    return value


def row_values(kind: Kind, body: dict[str, Any], now: float, lease_s: float) -> tuple[Any, ...]:
    """The upsert's values for `body`: its id, the table's columns, the body as JSON. A run
    in flight holds a lease."""
    values: list[Any] = [body["id"]]
    for column in TABLES[kind].columns:
        if column == "lease_until":
            values.append(now + lease_s if body["status"] in IN_FLIGHT else None)
        else:
            values.append(body.get(column))
    values.append(dump(body))
    return tuple(values)


@functools.cache
def upsert_sql(kind: Kind, mark: str) -> str:
    """Insert-or-replace by id; `mark` is the driver's placeholder (`?` or `%s`)."""
    table = TABLES[kind]
    columns = ("id", *table.columns, "body")
    cast = "::jsonb" if mark == "%s" else ""
    values = ", ".join([mark] * (len(columns) - 1) + [mark + cast])
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


ACTIVE_SQL = ", ".join(f"'{s}'" for s in ACTIVE)
IN_FLIGHT_SQL = ", ".join(f"'{s}'" for s in IN_FLIGHT)


class SqlReads:
    """The reads both SQL backends make the same way: only `rows` (and the driver's
    placeholder, `mark`) differ."""

    mark = "?"

    async def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    @property
    def _body(self) -> str:
        return "body::text" if self.mark == "%s" else "body"  # Postgres: the JSON as text

    async def get(self, kind: Kind, object_id: str) -> dict[str, Any] | None:
        sql = f"SELECT {self._body} FROM {TABLES[kind].name} WHERE id = {self.mark}"
        rows = await self.rows(sql, (object_id,))
        return load(rows[0][0]) if rows else None

    async def objects(
        self, kind: Kind, *, thread_id: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        where, params = [], []
        if thread_id is not None:
            where.append(f"thread_id = {self.mark}")
            params.append(thread_id)
        if run_id is not None:
            where.append(f"run_id = {self.mark}")
            params.append(run_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {self._body} FROM {TABLES[kind].name}{clause} ORDER BY seq"
        return [load(row[0]) for row in await self.rows(sql, params)]

    async def stale_runs(self, now: float, *, all_in_flight: bool) -> list[dict[str, Any]]:
        sql = f"SELECT {self._body} FROM bridge_runs WHERE status IN ({IN_FLIGHT_SQL})"
        params: tuple[Any, ...] = ()
        if not all_in_flight:
            sql += f" AND lease_until < {self.mark}"
            params = (now,)
        return [load(row[0]) for row in await self.rows(sql + " ORDER BY seq", params)]
