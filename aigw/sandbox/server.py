"""The sandbox server: stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive, the API's auth rules."""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aigw.sandbox import assistants, chat, runs, threads
from aigw.sandbox.faults import Dropped, Faults
from aigw.sandbox.http import ApiError, EventStream, Request, Response, Router
from aigw.sandbox.responder import EchoResponder, Responder
from aigw.sandbox.store import SandboxState


@dataclass
class SandboxOptions:
    """Knobs tests and users set: keys, header name, timing of runs, what answers them."""

    gateway_keys: list[str] = field(default_factory=list)
    gateway_key_header: str = "x-vercel-ai-gateway-key"
    run_duration_ms: int = 300  # queued → completed takes about this long
    requires_action_expiry_s: float = 600.0  # the real API: about 10 minutes
    poll_after_ms: int = 50  # sent as `openai-poll-after-ms` on run objects
    responder: Responder = field(default_factory=EchoResponder)  # writes the runs' replies
    context_tokens: int = 128_000  # longer chat prompts answer context_length_exceeded


class Sandbox:
    """A running (or ready-to-run) sandbox. `start()` serves on a thread; `url` ends in /v1."""

    def __init__(
        self,
        options: SandboxOptions | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.options = options or SandboxOptions()
        self.state = SandboxState(clock)
        self.router = Router()
        for module in (assistants, threads, runs, chat):
            module.register(self.router, self.state, self.options)
        # Outage rehearsal: faults, Idempotency-Key replay, key revocation (sandbox/faults.py).
        self.faults = Faults(self.options.gateway_key_header)
        self.faults.register(self.router)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def bind(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Listen on host:port (0: a free one); serve with `start` or `serve_forever`."""
        sandbox = self

        class Handler(_Handler):
            app = sandbox

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        return self

    @property
    def url(self) -> str:
        """The base URL clients use, ending in /v1."""
        assert self._server is not None, "bind() first"
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}/v1"

    def serve_forever(self) -> None:
        """Serve on this thread until `stop`."""
        assert self._server is not None, "bind() first"
        self._server.serve_forever(poll_interval=0.1)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Bind and serve on a daemon thread (tests, `aigw demo`)."""
        self.bind(host, port)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="sandbox")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            # shutdown() waits for the serve loop to end: only a loop on our thread can. A
            # foreground serve_forever() has already ended (Ctrl-C, SIGTERM) when stop() runs.
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch --------------------------------------------------------------------------
    def authenticate(self, request: Request) -> None:
        """Refuse a request without a bearer key, or without an accepted gateway key."""
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        keys = self.options.gateway_keys
        if keys and request.headers.get(self.options.gateway_key_header.lower()) not in keys:
            raise ApiError(
                401,
                f"Invalid or missing gateway key in header '{self.options.gateway_key_header}'.",
                code="invalid_api_key",
            )

    def dispatch(self, request: Request) -> Response | EventStream | Dropped:
        """The answer to a request, through the injected faults."""
        return self.faults.around(request, self._dispatch)

    def _dispatch(self, request: Request) -> Response | EventStream:
        try:
            handler, params = self.router.match(request.method, request.path)
            request.params = params
            if not request.path.startswith("/v1/__sandbox"):  # the admin API needs no key
                self.authenticate(request)
            with self.state.lock:
                self.state.request_count += 1
                result = handler(request)
                if not isinstance(result, EventStream):
                    # Snapshot while locked: runs keep changing once the handler has returned.
                    result = copy.deepcopy(result)
        except ApiError as error:
            return Response(error.status, error.body(), error.headers)
        if isinstance(result, Response | EventStream):
            return result
        return Response(200, result)


class _Handler(BaseHTTPRequestHandler):
    app: Sandbox
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each answer waits for a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "aigw-sandbox"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read stdout
        pass

    def handle(self) -> None:
        # A client that drops a kept-alive connection leaves nobody to answer.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request.build(self.command, self.path, dict(self.headers.items()), body)
        request_id = "req_" + secrets.token_hex(16)
        result = self.app.dispatch(request)
        if isinstance(result, Dropped):  # an injected fault: close without answering
            self.close_connection = True
            return
        if isinstance(result, EventStream):
            self._send_stream(result, request_id)
        else:
            self._send_json(result, request_id)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

    def _send_json(self, response: Response, request_id: str) -> None:
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-request-id", request_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.close_connection = True

    def _send_stream(self, stream: EventStream, request_id: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("x-request-id", request_id)
        for name, value in stream.headers.items():
            self.send_header(name, value)
        # Chunked, as the real API streams: the stream ends with its last chunk and the
        # connection stays open for the client's next request.
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for event, data in stream.events:
                text = data if isinstance(data, str) else json.dumps(data)
                named = "" if event is None else f"event: {event}\n"
                chunk = f"{named}data: {text}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
