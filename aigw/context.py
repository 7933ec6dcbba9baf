"""AppContext: settings, gateway client, repository and clock, built lazily and shared in ctx.obj.

Nothing heavy is built until a command asks for it, so `aigw --help` and local commands never
import the OpenAI SDK or supabase-py. Tests inject their own context with `obj=`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import openai

    from aigw.gateway.client import Gateway
    from aigw.settings import Settings
    from aigw.storage.base import Repository


class AppContext:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        flags: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.flags = {k: v for k, v in (flags or {}).items() if v is not None}
        self._settings = settings
        self.clock = clock
        self.command_options: dict[str, Any] = {}  # per-invocation knobs: --no-cache, --force…

    @cached_property
    def settings(self) -> Settings:
        from aigw.settings import load_settings

        return self._settings or load_settings(**self.flags)

    @cached_property
    def repository(self) -> Repository:
        from aigw.storage import open_repository

        return open_repository(self.settings)

    @cached_property
    def gateway(self) -> Gateway:
        from aigw.gateway.client import Gateway

        return Gateway(self.settings, options=self.command_options)

    @property
    def openai(self) -> openai.OpenAI:
        return self.gateway.client

    def close(self) -> None:
        """Called once after the command: flush what the gateway recorded, close clients."""
        if "gateway" in self.__dict__:
            self.gateway.close()
        if "repository" in self.__dict__:
            self.repository.close()


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext of this invocation (created by the root callback or injected by tests)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj
