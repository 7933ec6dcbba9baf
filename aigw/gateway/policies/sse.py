"""RunEventWatcher: the run object a server-sent-event stream ends with, for its log row.

Fed the stream's bytes as they pass (in any chunking); keeps the `data` of the last
`thread.run.*` event, whose run carries the model and, once completed, the token usage.
Nothing is held but the current, unfinished event.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_EVENT_BYTES = 1 << 20  # an event larger than this is passed on but not looked at


class RunEventWatcher:
    """Reads a run's event stream as it passes, keeping the latest run object."""

    def __init__(self) -> None:
        self.run: dict[str, Any] | None = None
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the stream."""
        data = self._pending + chunk
        *events, self._pending = data.replace(b"\r\n", b"\n").split(b"\n\n")
        if len(self._pending) > MAX_EVENT_BYTES:
            self._pending = b""
        for event in events:
            self._event(event)

    def _event(self, raw: bytes) -> None:
        name = b""
        data: list[bytes] = []
        for line in raw.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if not name.startswith(b"thread.run.") or name.startswith(b"thread.run.step"):
            return
        try:
            value = orjson.loads(b"\n".join(data))
        except orjson.JSONDecodeError:
            return
        if isinstance(value, dict) and value.get("object") == "thread.run":
            self.run = value
