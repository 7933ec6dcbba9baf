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
    if settings.rate_limit or settings.key_rate_limit:
        from aigw.gateway.transports.ratelimit import parse_rate

        for spec in (settings.rate_limit, settings.key_rate_limit):
            if spec:
                parse_rate(spec)
    try:
        sock = bind(host, port)
    except (OSError, OverflowError) as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return serve(settings, ServerOptions(upstream=base), sock, workers=workers, announce=announce)
