"""`aigw doctor`: the seed's migration checklist as checks, each with its fix.

Every check returns a Check and never raises: one broken part must not hide the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aigw.errors import AigwError

if TYPE_CHECKING:
    from aigw.context import AppContext

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except AigwError as exc:
        return Check(name, "fail", exc.message, exc.hint)
    except Exception as exc:  # a doctor reports; it does not crash
        return Check(name, "fail", f"{type(exc).__name__}: {exc}")


def check_variables(app: AppContext) -> Check:
    from aigw.settings import mask, mask_url

    s = app.settings
    shown = [f"OPENAI_API_KEY={mask(s.openai_api_key) or 'missing'}"]
    missing = [] if s.openai_api_key and s.openai_api_key.get_secret_value() else ["OPENAI_API_KEY"]
    if s.route == "gateway":
        shown.append(f"AI_GATEWAY_URL={mask_url(s.ai_gateway_url)}")
        keys = s.gateway_keys
        shown.append(f"GATEWAY_API_KEY={mask(keys[0]) if keys else 'missing'}")
        if not keys:
            missing.append("GATEWAY_API_KEY")
        if len(keys) > 1:
            shown.append(f"{len(keys) - 1} more key(s) for rotation")
    if missing:
        return Check(
            "variables",
            "fail",
            ", ".join(shown),
            f"set {' and '.join(missing)} (environment or .env in the working folder)",
        )
    return Check("variables", "ok", ", ".join(shown))


def check_route(app: AppContext) -> Check:
    from aigw.settings import mask_url, value_sources

    s = app.settings
    url = mask_url(s.base_url)
    source = value_sources(s, app.flags)["use_ai_gateway"]
    said = f"USE_AI_GATEWAY={str(s.use_ai_gateway).lower()} ({source})"
    if s.route == "gateway":
        return Check("route", "ok", f"gateway → {url} [{s.gateway_key_header}]; {said}")
    return Check("route", "ok", f"direct → {url} (rollback: no gateway); {said}")


def check_upstream(app: AppContext) -> Check:
    """A cheap authenticated call through the whole stack (logged like any other)."""
    from aigw.gateway.errors import translate

    app.command_options["no_cache"] = True  # a cached answer would prove nothing
    client = app.openai  # built (the SDK imported) before the clock starts
    started = time.perf_counter()
    try:
        client.beta.assistants.list(limit=1)
    except AigwError:
        raise
    except Exception as exc:
        error = translate(exc, app.settings)
        if error is None:
            raise
        return Check("upstream", "fail", error.message, error.hint)
    ms = (time.perf_counter() - started) * 1000
    from aigw.settings import mask_url

    url = mask_url(app.settings.base_url)
    return Check("upstream", "ok", f"{url} answered, key accepted ({ms:.0f} ms)")


def check_remote(app: AppContext) -> Check:
    from aigw.storage import open_remote, remote_label
    from aigw.storage.base import LogFilter

    label = remote_label(app.settings)
    if label is None:
        return Check(
            "remote store",
            "skip",
            f"none configured: logs stay in {app.settings.state_db_path}",
            "set SUPABASE_DB_URL (or SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY) to share them",
        )
    remote = open_remote(app.settings, timeout=3.0)
    assert remote is not None
    try:
        remote.records(LogFilter(limit=1))
    finally:
        remote.close()
    return Check("remote store", "ok", f"{label} reachable")


def check_schema(app: AppContext) -> Check:
    from aigw.storage import migrations

    url = app.settings.db_url
    if not url:
        detail = "needs SUPABASE_DB_URL or DATABASE_URL to read the migrations table"
        return Check("schema", "skip", detail)
    status = migrations.status(url, app.settings.sql_dir)
    behind = [m.name for m in status.migrations if m.state != "applied"]
    if behind:
        states = ", ".join(f"{m.name} {m.state}" for m in status.migrations if m.state != "applied")
        return Check("schema", "fail", f"not at the latest migration: {states}", "aigw migrate")
    latest = status.migrations[-1].name if status.migrations else "none"
    return Check("schema", "ok", f"at the latest migration ({latest}); auth: {status.auth}")


def check_outbox(app: AppContext) -> Check:
    from aigw.services.records import set_aside_mirror_rows
    from aigw.storage import remote_kind

    local = app.repository
    # The doctor's own calls (the upstream probe) are synced as this command ends: not pending.
    own = app.call_log.written if "call_log" in app.__dict__ else 0
    pending = max(0, local.pending_count() - own)
    if remote_kind(app.settings) is None:
        return Check("outbox", "ok", f"{pending} row(s) kept locally (no remote store to sync)")
    aside = local.set_aside_rows()
    mirror_aside = set_aside_mirror_rows(local)
    if aside or mirror_aside:
        parts = []
        if aside:
            first = aside[0]
            parts.append(f"{len(aside)} row(s) (row {first.id}: {first.reason})")
        if mirror_aside:
            row = mirror_aside[0]
            parts.append(
                f"{len(mirror_aside)} mirror row(s) ({row['kind']} of {row['object']}: "
                f"{row['reason']})"
            )
        return Check(
            "outbox",
            "warn",
            f"set aside, the database refused them: {'; '.join(parts)}; {pending} pending sync",
            "fix the cause (often `aigw migrate`), then `aigw logs sync` sends them again "
            "(`aigw logs sync --json` lists every one)",
        )
    if pending:
        return Check("outbox", "warn", f"{pending} row(s) pending sync", "aigw logs sync")
    return Check("outbox", "ok", "nothing pending sync")


def check_breaker(app: AppContext) -> Check:
    from aigw.services.breaker import breaker_status

    opened = [s for s in breaker_status(app) if s.state != "closed"]
    if not opened:
        return Check("breaker", "ok", "closed")
    parts = [f"{s.host} {s.state} after {s.failures} failures" for s in opened]
    return Check("breaker", "fail", "; ".join(parts), "aigw breaker reset (or wait for the probe)")


def check_completions(app: AppContext) -> Check:
    from aigw.services.completions import installed_shells

    shells = installed_shells()
    if shells:
        return Check("completions", "ok", "installed for " + ", ".join(shells))
    return Check("completions", "warn", "not installed", "aigw completions install bash|zsh|fish")


CHECKS: list[tuple[str, Callable[[AppContext], Check]]] = [
    ("variables", check_variables),
    ("route", check_route),
    ("upstream", check_upstream),
    ("remote store", check_remote),
    ("schema", check_schema),
    ("outbox", check_outbox),
    ("breaker", check_breaker),
    ("completions", check_completions),
]


def run_checks(app: AppContext) -> list[Check]:
    results: list[Check] = []
    for name, check in CHECKS:
        if name == "upstream" and results[0].status == "fail":
            results.append(Check(name, "skip", "needs the variables above"))
            continue
        results.append(_guard(name, lambda check=check: check(app)))  # type: ignore[misc]
    return results


def smoke_test(app: AppContext, *, timeout: float = 120.0) -> list[Check]:
    """The critical endpoints end to end: assistant → thread → message → run → delete.

    What it creates is deleted again, whatever happened in between.
    """
    from aigw.services.assistants import create_assistant, delete_assistant
    from aigw.services.messages import create_message
    from aigw.services.requests import AssistantCreate, MessageCreate, RunCreate, ThreadCreate
    from aigw.services.runs import create_run_and_wait
    from aigw.services.threads import create_thread, delete_thread

    checks: list[Check] = []
    made: dict[str, str] = {}

    def step(name: str, action: Callable[[], str]) -> bool:
        started = time.perf_counter()
        check = _guard(name, lambda: Check(name, "ok", action()))
        if check.status == "ok":
            ms = (time.perf_counter() - started) * 1000
            check = Check(name, "ok", f"{check.detail} ({ms:.0f} ms)")
        checks.append(check)
        return check.status == "ok"

    def make_assistant() -> str:
        request = AssistantCreate(model="gpt-4o-mini", name="aigw doctor smoke test")
        made["assistant"] = create_assistant(app, request).id
        return f"created {made['assistant']}"

    def make_thread() -> str:
        made["thread"] = create_thread(app, ThreadCreate()).id
        return f"created {made['thread']}"

    def add_message() -> str:
        request = MessageCreate(content="aigw doctor: reply with one word.")
        return f"created {create_message(app, made['thread'], request).id}"

    def run() -> str:
        outcome = create_run_and_wait(
            app, made["thread"], RunCreate(assistant_id=made["assistant"]), timeout=timeout
        )
        if outcome.run.status != "completed":
            error = getattr(outcome.run, "last_error", None)
            raise AigwError(f"run {outcome.run.id} ended {outcome.run.status}: {error}")
        return f"{outcome.run.id} completed with {len(outcome.messages)} reply message(s)"

    # Every log row the smoke test makes, to remove them with the rest of what it made.
    made_rows: list[str] = []
    app.call_log.watch = made_rows
    try:
        for name, action in (
            ("smoke: assistant", make_assistant),
            ("smoke: thread", make_thread),
            ("smoke: message", add_message),
            ("smoke: run", run),
        ):
            if not step(name, action):
                break
    finally:
        if "thread" in made:
            step(
                "smoke: cleanup thread", lambda: f"deleted {delete_thread(app, made['thread']).id}"
            )
        if "assistant" in made:
            step(
                "smoke: cleanup assistant",
                lambda: f"deleted {delete_assistant(app, made['assistant']).id}",
            )
        app.call_log.watch = None
        step("smoke: cleanup rows", lambda: forget_smoke(app, made_rows, made))
    return checks


def forget_smoke(app: AppContext, log_ids: list[str], made: dict[str, str]) -> str:
    """Remove the rows the smoke test made: its log rows and the mirror rows of its assistant
    and thread (the agents row included), queued locally or, when another process's sync
    already sent them, in the remote store; after the calls, so every row is recorded."""
    assistant, thread = made.get("assistant"), made.get("thread")
    local = app.repository.forget(log_ids, openai_assistant_id=assistant, openai_thread_id=thread)
    said = f"removed {local} row(s) from the local store"
    if app.remote is not None:
        remote = app.remote.forget(log_ids, openai_assistant_id=assistant, openai_thread_id=thread)
        said += f" and {remote} from the remote one"
    return said
