"""The events of one run leg, kept for the streams that follow it.

A leg runs as its own task and writes here; a streaming response reads from a cursor and
waits for more, so a client that disconnects never stops the run. Event data is serialised
when emitted: the objects keep changing after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aigw.bridge.store import dump
from aigw.sandbox.lifecycle import STREAM_END

_WAIT_S = 30.0  # a follower re-checks at least this often (a leg has its own deadline)


class RunFeed:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.closed = False  # the leg is over: followers end after the last event
        self._changed = asyncio.Event()

    def emit(self, name: str, obj: dict[str, Any]) -> None:
        self.events.append((name, dump(obj)))
        self._changed.set()

    def close(self) -> None:
        """No more events will come (the leg ended, or its thread was deleted under it)."""
        self.closed = True
        self._changed.set()

    async def follow(self, cursor: int = 0) -> AsyncIterator[list[tuple[str, str]]]:
        """Events from `cursor` on, in batches of those ready together (one write each), then
        `done` after the leg's last one."""
        while True:
            batch: list[tuple[str, str]] = []
            while cursor < len(self.events):
                name, data = self.events[cursor]
                cursor += 1
                batch.append((name, data))
                if name in STREAM_END:
                    yield [*batch, ("done", "[DONE]")]
                    return
            if batch:
                yield batch
            if self.closed:
                yield [("done", "[DONE]")]
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), _WAIT_S)
            except TimeoutError:
                continue
