"""AigwError and the exit codes: the one vocabulary services use to fail."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (README "Exit codes"). Few on purpose: scripts branch on them."""

    OK = 0
    API_ERROR = 1  # the API answered with an error, a run failed, or an alert threshold broke
    USAGE = 2  # bad flags or input that fails validation; nothing was sent
    CONFIG = 3  # configuration missing or wrong
    NETWORK = 4  # upstream unreachable: connection refused, DNS, TLS, read timeout
    TIMEOUT = 5  # a --timeout deadline passed while waiting
    CIRCUIT_OPEN = 6  # the circuit breaker refused the call without touching the network
    RATE_LIMITED = 7  # over the client-side rate limit with --no-wait, or Retry-After beyond budget
    DATABASE = 8  # the Postgres/Supabase store failed (migrate, sync)
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM: the command stopped, after saving its log rows


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so the command unwinds and closes like Ctrl-C."""


class AigwError(Exception):
    """An error a person can act on: a one-line message, an optional hint, an exit code."""

    def __init__(
        self, message: str, *, code: ExitCode = ExitCode.API_ERROR, hint: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(AigwError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message, code=ExitCode.USAGE, hint=hint)


class ConfigError(AigwError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message, code=ExitCode.CONFIG, hint=hint)
