"""Preflight: refuse a call at once, from the local store only, while the circuit is open.

It runs before the Gateway is built, so a refused invocation imports neither the OpenAI SDK
nor httpx2 and touches no network: a refusal is cheaper than importing the SDK.
BreakerTransport checks again per attempt in process; this is only the early, cheap answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aigw.gateway.circuit import breaker_for, host_of

if TYPE_CHECKING:
    from aigw.common.log_record import LogRecord
    from aigw.common.state import SharedState
    from aigw.gateway.clock import Clock
    from aigw.settings import Settings


def preflight(
    settings: Settings,
    state: SharedState,
    *,
    record: Callable[[LogRecord], None],
    force: bool = False,
    clock: Clock | None = None,
) -> None:
    """Raise CircuitOpenError (exit code CIRCUIT_OPEN) while the breaker refuses the upstream.

    The refusal is still one log row, handed to `record`; which endpoint is unknown before the
    SDK builds the request, hence `*`. Nothing is written when the call may go.
    """
    if force:
        return
    error = breaker_for(settings, state, clock).refusal(host_of(settings.base_url), claim=False)
    if error is not None:
        from aigw.common.log_record import LogRecord

        record(
            LogRecord(endpoint="*", method="*", error_message=error.message, route=settings.route)
        )
        raise error
