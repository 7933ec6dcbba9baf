"""A small malicious upstream for the tests: a loopback HTTP server whose every answer is a
function the test gives it (redirect elsewhere, trickle, never stop, gzip bomb, HTML…), and
which records what it was sent.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[["Handler"], None]


@dataclass
class Hostile:
    """The server, its URL and every request it received."""

    answer: Answer
    url: str = ""
    received: list[Received] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        hostile: Hostile = self.server.hostile
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        hostile.received.append(Received(self.command, self.path, headers, body))
        # (the client giving up mid-answer is what these tests expect of it)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            hostile.answer(self)

    do_GET = do_POST = do_DELETE = _handle

    def send_raw(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def json(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.send_raw(body)

    def trickle(self, data: bytes, every: float = 0.05) -> None:
        """`data` one byte at a time, until the client goes or the server stops."""
        stopping = self.server.hostile.stopping
        for byte in data:
            if stopping.wait(every):
                return
            self.send_raw(bytes([byte]))


def start(answer: Answer) -> tuple[Hostile, Callable[[], None]]:
    hostile = Hostile(answer)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.hostile = hostile  # type: ignore[attr-defined]
    hostile.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        hostile.stopping.set()
        server.shutdown()
        server.server_close()

    return hostile, stop


def endless(chunk: bytes = b" " * 65536) -> Iterator[bytes]:
    while True:
        yield chunk
