"""Gateway: builds the OpenAI SDK client for the configured route over aigw's transport stack."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aigw.errors import ConfigError
from aigw.gateway import Clock
from aigw.gateway.circuit import breaker_for
from aigw.gateway.http import BaseTransport
from aigw.gateway.transports.logging import LoggingTransport
from aigw.redact import redactor_for
from aigw.settings import SecretStr, Settings

if TYPE_CHECKING:
    import openai

    from aigw.common.log_record import LogRecord, RecordSink
    from aigw.common.state import SharedState
    from aigw.gateway.transports.keys import LabelledKey

# The SDK marks every Assistants method deprecated (OpenAI switched its hosted Assistants API
# off on 2026-08-26); gateways and compatible servers still serve it, and that is who aigw is
# for, so the warning would only be noise in the operator's terminal.
warnings.filterwarnings(
    "ignore",
    message="^deprecated$|^The Assistants API is deprecated",
    category=DeprecationWarning,
)


def build_stack(
    settings: Settings,
    *,
    network: BaseTransport,
    sink: Callable[[LogRecord], None],
    state: SharedState | None = None,
    options: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> BaseTransport:
    """The transport stack, outermost first. Order matters and is decided only here:

    KeyRotation → Retry → Logging → Cache → Breaker → RateLimit → AnswerCheck → RedirectGuard
    → network

    * KeyRotation outermost: a 401 is not retried, so rotation sends the whole call again
      with the next key; the retry layer below continues the attempt numbers and keeps the
      call id and Idempotency-Key, so the log shows one call with both attempts.
    * Retry outside logging: every attempt (and every wait between them) is its own log row.
    * Logging outside the cache: a hit still gets its row, with cache_status=hit.
    * Cache outside breaker and rate limit: a hit touches no network, so it neither spends
      a rate-limit slot nor is refused by an open circuit (in-process; from the command line
      `Gateway.preflight` refuses first, before the SDK is even imported).
    * Breaker outside rate limit: a refused call fails at once instead of waiting for a slot;
      the rate limit sits right on the network, where a 429 tells it to slow down.
    * AnswerCheck below the breaker: a 200 that is not JSON is an error, and the log row
      below which it is raised records it (a local refusal: not counted against the upstream).
    * RedirectGuard right on the network: every redirect is answered (refused, or followed on
      the same origin) before any layer above, or the SDK's client, could follow it.
    `options` are the invocation's knobs (command_options: force, no_wait, no_cache, max_age,
    verbose, notify, on_wait), read at request time.
    """
    from aigw.gateway.transports.answers import AnswerCheckTransport
    from aigw.gateway.transports.breaker import BreakerTransport
    from aigw.gateway.transports.cache import CacheTransport
    from aigw.gateway.transports.keys import KeyRotationTransport
    from aigw.gateway.transports.ratelimit import RateLimiter, RateLimitTransport
    from aigw.gateway.transports.redirects import RedirectGuardTransport
    from aigw.gateway.transports.retry import RetryPolicy, RetryTransport

    opts = options if options is not None else {}
    clock = clock or Clock()
    redactor = redactor_for(settings)

    def notify(message: str) -> None:
        opts.get("notify", _ignore)(message)

    transport: BaseTransport = AnswerCheckTransport(RedirectGuardTransport(network))
    if state is not None:
        if settings.rate_limit:
            limiter = RateLimiter(state, settings.rate_limit, clock=clock)
            transport = RateLimitTransport(
                transport,
                limiter,
                no_wait=lambda: bool(opts.get("no_wait")),
                on_wait=lambda seconds: opts.get("on_wait", _ignore)(seconds),
            )
        transport = BreakerTransport(
            transport, breaker_for(settings, state, clock), force=lambda: bool(opts.get("force"))
        )
        if settings.cache_ttl > 0:
            transport = CacheTransport(
                transport,
                state,
                default_ttl=settings.cache_ttl,
                route=settings.route,
                credential_headers=(settings.gateway_key_header,),
                options=opts,
                notify=notify,
                clock=clock,
                redactor=redactor,
            )
    transport = LoggingTransport(
        transport,
        sink,
        route=settings.route,
        user_id=settings.user_id,
        redactor=redactor,
        log_payloads=settings.log_payloads,
    )
    transport = RetryTransport(
        transport,
        RetryPolicy(settings.max_retries, settings.retry_budget, attempt_timeout=settings.timeout),
        clock=clock,
        on_retry=lambda message: opts.get("on_retry", _ignore)(message),
    )
    keys = _keys(settings)
    if state is not None and settings.route == "gateway" and len(keys) > 1:
        transport = KeyRotationTransport(
            transport, keys, state, header=settings.gateway_key_header, notify=notify
        )
    return transport


def _network(settings: Settings) -> BaseTransport:
    from aigw.gateway.network import NetworkTransport

    return NetworkTransport(timeout=settings.timeout, max_response_bytes=settings.max_body_bytes)


def _ignore(*args: Any) -> None:
    pass


def _keys(settings: Settings) -> list[LabelledKey]:
    from aigw.gateway.policies.keys import labelled_keys

    def value(secret: Any) -> str | None:
        return secret.get_secret_value() if secret is not None else None

    return labelled_keys(
        value(settings.gateway_api_key),
        value(settings.gateway_api_key_next),
        value(settings.gateway_api_keys),
    )


# What an HTTP header may carry: a token for the name; visible ASCII, space and tab for a value.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?")


def check_headers(settings: Settings) -> None:
    """Refuse, before anything is sent, credentials an HTTP header cannot carry (a newline
    from a pasted key, a non-ASCII character): a local misconfiguration (exit 3), which must
    neither reach the upstream nor count against it. The value is never shown."""
    candidates: list[tuple[str, SecretStr | str | None]] = [
        ("OPENAI_API_KEY", settings.openai_api_key)
    ]
    if settings.route == "gateway":
        if not _HEADER_NAME.fullmatch(settings.gateway_key_header):
            raise ConfigError(
                "AIGW_GATEWAY_KEY_HEADER is not a valid HTTP header name",
                hint="use letters, digits and '-', e.g. x-vercel-ai-gateway-key",
            )
        candidates += [
            ("GATEWAY_API_KEY", settings.gateway_api_key),
            ("GATEWAY_API_KEY_NEXT", settings.gateway_api_key_next),
        ]
        keys = settings.gateway_api_keys
        candidates += [("GATEWAY_API_KEYS", key) for key in _keys_in(keys)]
    for variable, secret in candidates:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value and not _HEADER_VALUE.fullmatch(value):
            raise ConfigError(
                f"{variable} holds a character an HTTP header cannot carry (a control "
                "character, a line break, surrounding spaces or non-ASCII); nothing was sent",
                hint=f"set {variable} again, without the stray character",
            )


def _keys_in(keys: SecretStr | None) -> list[str]:
    return [k.strip() for k in keys.get_secret_value().split(",")] if keys else []


class Gateway:
    """The configured route (gateway or direct) with its SDK client and transport stack."""

    def __init__(
        self,
        settings: Settings,
        *,
        state: SharedState,
        log: RecordSink | None = None,
        options: dict[str, Any] | None = None,
        network: BaseTransport | None = None,
        clock: Clock | None = None,
    ):
        self.settings = settings
        self.log = log  # where every attempt's row is written
        self.records: list[LogRecord] = []  # the rows, when there is no log to write them to
        self.options = options if options is not None else {}
        self.clock = clock or Clock()
        # Cache, breaker, rate limit and key memory: the state shared by processes (AIGW_HOME's
        # SQLite file, or Redis with AIGW_STATE_URL), opened by the caller (AppContext).
        self.state = state
        self.transport = build_stack(
            settings,
            # Built here, not on the first request, so that no logged latency includes loading the
            # TLS trust store; a call refused by the open breaker never gets this far.
            network=network or _network(settings),
            sink=self._record,
            state=self.state,
            options=self.options,
            clock=self.clock,
        )

    def _record(self, record: LogRecord) -> None:
        """A row from the logging layer, or a refusal before the SDK was built."""
        if self.log is not None:
            self.log(record)
        else:
            self.records.append(record)

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

    def preflight(self) -> None:
        """Refuse at once while the upstream's circuit is open (gateway/circuit.py).

        The command line runs the same check before building a Gateway at all (AppContext);
        this one covers a Gateway used directly, before its SDK client is built.
        """
        from aigw.gateway.circuit import preflight

        preflight(
            self.settings,
            self.state,
            record=self._record,
            force=bool(self.options.get("force")),
            clock=self.clock,
        )

    @cached_property
    def client(self) -> openai.OpenAI:
        check_headers(self.settings)
        self.preflight()
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
        """Close the SDK client (or the bare stack), the shared state and the call log."""
        if "client" in self.__dict__:
            self.client.close()
        else:
            self.transport.close()
        self.state.close()
        if self.log is not None:
            self.log.close()
