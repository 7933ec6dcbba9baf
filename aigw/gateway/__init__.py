"""The gateway client: one factory for the OpenAI SDK client and aigw's transport stack.

Clock is the wall time and the sleep the resilience layers use, injectable for tests. Wall
time (not a monotonic clock) because breaker, rate-limit and cache state is shared with other
aigw processes through the local store, and only wall time means the same there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Clock:
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
