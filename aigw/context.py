"""AppContext: settings, gateway client, repository and clock, built lazily and shared in ctx.obj.

Nothing heavy is built until a command asks for it, so `aigw --help` and local commands never
import the OpenAI SDK or supabase-py. Tests inject their own context with `obj=`.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import typer

from aigw.gateway import Clock

if TYPE_CHECKING:
    import openai

    from aigw.common.state import SharedState
    from aigw.gateway.client import Gateway
    from aigw.settings import Settings
    from aigw.storage import RemoteRepository
    from aigw.storage.base import Mirror
    from aigw.storage.call_log import CallLog
    from aigw.storage.sqlite import SQLiteRepository


class AppContext:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        flags: dict[str, Any] | None = None,
        clock: Clock | None = None,
    ):
        self.flags = {k: v for k, v in (flags or {}).items() if v is not None}
        self._settings = settings
        self.clock = clock or Clock()  # the one clock of the command's layers; tests move it
        self.command_options: dict[str, Any] = {}  # per-invocation knobs: --no-cache, --force…
        self.flush_logs_on_close = True  # off when the command synced the logs itself
        # What a command could not record after its upstream write, with the repair: said on
        # stderr at close; the command itself still succeeds (services/records.py).
        self.unrecorded: list[str] = []

    @cached_property
    def settings(self) -> Settings:
        from aigw.settings import load_settings

        return self._settings or load_settings(**self.flags)

    @cached_property
    def repository(self) -> SQLiteRepository:
        """The local store under AIGW_HOME: the call-log outbox and the embedded default."""
        from aigw.storage import open_repository

        return open_repository(self.settings)

    @cached_property
    def remote(self) -> RemoteRepository | None:
        """The remote store (Postgres or Supabase REST), None when none is configured."""
        from aigw.storage import open_remote

        return open_remote(self.settings, timeout=max(self.settings.sync_budget, 5.0))

    @property
    def mirror(self) -> Mirror | None:
        """The seed's agents/conversations/messages tables, or None without a remote store.

        Raises AigwError (exit 8) when a remote is configured but unreachable. Agents it
        upserts are remembered locally, so later log rows get their agent_id cheaply.
        """
        if self.remote is None:
            return None
        from aigw.storage.base import RememberingMirror

        return RememberingMirror(self.remote, self._remember_agent)

    def _remember_agent(self, assistant_id: str, agent_id: str, model: str | None) -> None:
        self.repository.remember_agent(assistant_id, agent_id, model)

    @cached_property
    def call_log(self) -> CallLog:
        """Where the gateway's log rows go; the store opens on the first record."""
        from aigw.storage.call_log import CallLog

        return CallLog(lambda: self.repository)

    @cached_property
    def state(self) -> SharedState:
        """Cache, breaker, rate-limit and key state shared with other processes."""
        from aigw.storage import open_state

        return open_state(self.settings)

    @cached_property
    def gateway(self) -> Gateway:
        from aigw.gateway.client import Gateway

        return Gateway(
            self.settings,
            log=self.call_log,
            options=self.command_options,
            state=self.state,
            clock=self.clock,
        )

    @property
    def openai(self) -> openai.OpenAI:
        if "gateway" not in self.__dict__:
            # Before the Gateway (httpx2) and the SDK are imported: an open circuit refuses
            # the invocation for the price of a SQLite read.
            from aigw.gateway.circuit import preflight

            preflight(
                self.settings,
                self.state,
                record=self.call_log,
                force=bool(self.command_options.get("force")),
                clock=self.clock,
            )
        return self.gateway.client

    @property
    def logs_to_sync(self) -> bool:
        """Whether the command used the local store and left syncing its rows to its end."""
        return "repository" in self.__dict__ and self.flush_logs_on_close

    def close(self) -> list[str]:
        """Close what the command opened, the log rows' writer first; the warnings it leaves
        for stderr. Syncing the pending rows comes after (services/sync.py `finish_command`)."""
        warnings: list[str] = []
        if "gateway" in self.__dict__:
            self.gateway.close()  # closes the state store and the call log too
        else:  # refused by the preflight, or no call made: close what it opened
            if "state" in self.__dict__:
                self.state.close()
            if "call_log" in self.__dict__:
                self.call_log.close()
        if "call_log" in self.__dict__ and self.call_log.unwritten:
            log = self.call_log
            warnings.append(f"{len(log.unwritten)} log rows could not be saved ({log.problem})")
        warnings += self.unrecorded
        if "remote" in self.__dict__ and self.remote is not None:
            self.remote.close()
        if "repository" in self.__dict__:
            if malformed := list(self.repository.malformed.values()):
                warnings.append(
                    f"skipped {len(malformed)} malformed row(s) of the local store (row "
                    f"{malformed[0].id}: {malformed[0].reason}); sync sets them aside"
                )
            self.repository.close()
        return warnings


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext of this invocation (created by the root callback or injected by tests)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj
