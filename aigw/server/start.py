"""Starting the gateway server from the settings: checks first, then bind and serve."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aigw.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from aigw.settings import Settings


def serve_gateway(
    settings: Settings,
    *,
    host: str,
    port: int,
    upstream: str | None,
    workers: int,
    announce: Callable[[str], None],
    assistants: str = "proxy",
    model_url: str | None = None,
) -> int:
    """Serve until stopped; the exit code. Raises ConfigError/UsageError before binding."""
    from aigw.server.run import bind, serve
    from aigw.server.runtime import ServerOptions

    if not settings.gateway_keys:
        raise ConfigError(
            "GATEWAY_API_KEY is not set: the gateway would accept no client",
            hint="set GATEWAY_API_KEY (and GATEWAY_API_KEY_NEXT or GATEWAY_API_KEYS to rotate)",
        )
    base = (upstream or settings.openai_base_url).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"--upstream must be an http(s) URL, got {base[:100]!r}")
    model = check_assistants(settings, assistants, model_url)
    if settings.rate_limit or settings.key_rate_limit:
        from aigw.gateway.policies.ratelimit import parse_rate

        for spec in (settings.rate_limit, settings.key_rate_limit):
            if spec:
                parse_rate(spec)
    from aigw.storage import check_state_url

    check_state_url(settings)  # here: a worker's error at start-up would be lost
    try:
        sock = bind(host, port)
    except (OSError, OverflowError) as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    options = ServerOptions(upstream=base, workers=workers, assistants=assistants, model_url=model)
    return serve(settings, options, sock, workers=workers, announce=announce)


def check_assistants(settings: Settings, assistants: str, model_url: str | None) -> str | None:
    """The model URL `--assistants local` makes runs through (None for proxy); or why not."""
    if assistants not in ("proxy", "local"):
        raise UsageError(f"--assistants must be proxy or local, got {assistants[:40]!r}")
    if assistants == "proxy":
        if model_url:
            raise UsageError("--model-url needs --assistants local")
        return None
    if not model_url:
        raise UsageError(
            "--assistants local needs --model-url: the Chat Completions API runs are made through"
        )
    model = model_url.rstrip("/")
    if not model.startswith(("http://", "https://")):
        raise UsageError(f"--model-url must be an http(s) URL, got {model[:100]!r}")
    if settings.openai_api_key is None:
        raise ConfigError(
            "OPENAI_API_KEY is not set: the model API at --model-url needs a key",
            hint="set OPENAI_API_KEY to the model API's key (any value for one that needs none)",
        )
    return model
