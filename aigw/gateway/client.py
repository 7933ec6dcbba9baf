"""Gateway: builds the OpenAI SDK client for the configured route over aigw's transport stack."""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aigw.errors import ConfigError
from aigw.gateway.http import BaseTransport, HTTPTransport
from aigw.gateway.transports.timing import CallTiming, TimingTransport
from aigw.settings import Settings

if TYPE_CHECKING:
    import openai

    from aigw.storage.base import Repository

# The SDK marks every Assistants method deprecated (OpenAI switched its hosted Assistants API
# off on 2026-08-26); gateways and compatible servers still serve it, and that is who aigw is
# for, so the warning would only be noise in the operator's terminal.
warnings.filterwarnings("ignore", message="^deprecated$", category=DeprecationWarning)


def build_stack(
    settings: Settings,
    *,
    network: BaseTransport,
    on_timing: Any,
) -> BaseTransport:
    """The transport stack, outermost first. Order matters and is decided only here:

    TimingTransport (one record per HTTP attempt) → network.
    """
    return TimingTransport(network, on_timing)


class Gateway:
    """The configured route (gateway or direct) with its SDK client and transport stack."""

    def __init__(
        self,
        settings: Settings,
        *,
        repository: Repository | None = None,
        options: dict[str, Any] | None = None,
        network: BaseTransport | None = None,
    ):
        self.settings = settings
        self.repository = repository
        self.options = options or {}
        self.timings: list[CallTiming] = []
        self.transport = build_stack(
            settings,
            network=network or HTTPTransport(),
            on_timing=self.timings.append,
        )

    @property
    def route(self) -> str:
        return self.settings.route

    def headers(self) -> dict[str, str]:
        """Gateway header on the gateway route only: the direct route must not leak it."""
        if self.settings.route != "gateway":
            return {}
        keys = self.settings.gateway_keys
        if not keys:
            raise ConfigError(
                "GATEWAY_API_KEY is not set (the gateway route needs it)",
                hint="set GATEWAY_API_KEY, or USE_AI_GATEWAY=false to call OpenAI directly",
            )
        return {self.settings.gateway_key_header: keys[0]}

    @cached_property
    def client(self) -> openai.OpenAI:
        import openai

        api_key = self.settings.openai_api_key
        if api_key is None or not api_key.get_secret_value():
            raise ConfigError(
                "OPENAI_API_KEY is not set",
                hint="export OPENAI_API_KEY=sk-… or put it in .env in the working folder",
            )
        http_client = openai.DefaultHttpx2Client(
            transport=self.transport, timeout=self.settings.timeout
        )
        return openai.OpenAI(
            api_key=api_key.get_secret_value(),
            base_url=self.settings.base_url,
            default_headers=self.headers(),
            http_client=http_client,
            # One retry policy only, aigw's own transport layer; the SDK must not stack its own.
            max_retries=0,
        )

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
        else:
            self.transport.close()
