"""What a create records besides its upstream write, and the rule that keeps it honest:
a successful upstream write is never reported as a failure.

Before the upstream call: the local store must take writes (`check_writable`), and whatever
the mirror will need from the remote store (the agent, the user) is looked up — a failure there
stops the command with nothing created.

After it: the `agents` / `conversations` / `messages` mirror rows are queued in the local store
(`mirror_outbox`) and sent by the same sync as log rows, in order, idempotently (each is an
upsert). If the local store cannot take them, they are written to the remote store directly;
if that fails too, the command still prints what it created, exits 0, and says on stderr what
was not recorded and how to repair it (`AppContext.unrecorded`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from aigw.errors import ConfigError

if TYPE_CHECKING:
    from aigw.context import AppContext
    from aigw.storage.base import Mirror
    from aigw.storage.sqlite import SQLiteRepository

AGENT, CONVERSATION, MESSAGE = "agent", "conversation", "message"


def check_writable(app: AppContext) -> None:
    """Refuse before anything is sent when the local store cannot take the call's records."""
    try:
        app.repository.check_writable()
    except sqlite3.Error as exc:
        raise ConfigError(
            f"the local store {app.settings.state_db_path} does not take writes ({exc}); "
            "nothing was sent",
            hint="make AIGW_HOME writable (or point AIGW_HOME at a writable folder)",
        ) from None


def records_mirror(app: AppContext) -> bool:
    """Whether creates owe mirror rows: only when a remote store is configured."""
    from aigw.storage import remote_kind

    return remote_kind(app.settings) is not None


def record(app: AppContext, kind: str, payload: dict[str, Any], *, what: str, repair: str) -> None:
    """Queue one mirror row for the remote store; never raises (see the module docstring).

    `what` names the row for a warning, `repair` says how to record it by hand."""
    try:
        app.repository.queue_mirror(kind, payload)
        return
    except Exception as exc:
        local_problem = f"{type(exc).__name__}: {exc}"
    try:
        mirror = app.mirror
        if mirror is None:
            raise ConfigError("no remote store is configured")
        send(mirror, app.repository, kind, payload)
    except Exception as exc:
        app.unrecorded.append(
            f"{what} was not recorded (local store: {local_problem}; remote store: "
            f"{type(exc).__name__}: {exc}); {repair}"
        )


def note_unrecorded(app: AppContext, what: str, exc: BaseException, repair: str) -> None:
    """A step after the upstream write failed: say so, never fail the command for it."""
    app.unrecorded.append(f"{what} was not recorded ({type(exc).__name__}: {exc}); {repair}")


def send(
    mirror: Mirror, local: SQLiteRepository | None, kind: str, payload: dict[str, Any]
) -> None:
    """Write one queued mirror row remotely (each is an upsert: sending twice is harmless)."""
    if kind == AGENT:
        agent_id = mirror.upsert_agent(**payload)
        if local is not None:
            local.remember_agent(payload["openai_assistant_id"], agent_id, payload.get("model"))
    elif kind == CONVERSATION:
        mirror.insert_conversation(**payload)
    elif kind == MESSAGE:
        mirror.insert_message(**payload)
    else:
        raise ValueError(f"unknown mirror row kind {kind!r}")


def mirror_object(kind: str, payload: dict[str, Any]) -> str:
    """The API object a mirror row records (the ID a person looks for)."""
    key = {AGENT: "openai_assistant_id", CONVERSATION: "openai_thread_id"}.get(
        kind, "openai_message_id"
    )
    return str(payload.get(key) or "?")


def set_aside_mirror_rows(local: SQLiteRepository) -> list[dict[str, Any]]:
    """The mirror rows the remote database refused, each with its object and the reason."""
    return [
        {"seq": seq, "kind": kind, "object": mirror_object(kind, payload), "reason": reason}
        for seq, kind, payload, reason in local.mirror_refused_rows()
    ]


def refusal(exc: BaseException) -> str | None:
    """The reason when the remote database refused the data (SQLSTATE classes 22, 23), not the
    connection; None otherwise."""
    code = getattr(exc, "sqlstate", None) or getattr(exc.__cause__, "code", None) or ""
    if str(code)[:2] in ("22", "23"):
        from aigw.storage.postgres import first_line

        return first_line(exc)
    return None


def sync_mirror(local: SQLiteRepository, remote: Mirror, *, refused_too: bool = False) -> int:
    """Send the queued mirror rows in order; returns how many went. A row the database refuses
    is kept with the reason and passed over (sent again by `aigw logs sync`); any other failure
    stops here, the rest kept for next time."""
    sent = 0
    for seq, kind, payload in local.mirror_queue(refused_too=refused_too):
        try:
            send(remote, local, kind, payload)
        except Exception as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            local.mirror_refused(seq, reason)
            continue
        local.mirror_sent(seq)
        sent += 1
    return sent
