"""The bridge's HTTP face: the Assistants routes as aiohttp.web handlers, mountable in any app.

`add_routes(app, service)` adds every route under /v1, each answering its errors in the API's
shape; `bridge_app(service)` is an app of its own (tests, benchmarks). Each route is one line
of ROUTES: the service call that answers it. What the call returns is sent as JSON; a call
that starts a run leg returns the run and its feed, sent as the run or — when the body asks to
stream — as server-sent events (`event:` and `data:` lines, ending with `done`, as the real
API's).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from aigw.bridge.feed import RunFeed
from aigw.bridge.service import BridgeService
from aigw.bridge.store import dump
from aigw.common.api_errors import ApiError, error_response
from aigw.sandbox.http import Request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A client polling a run waits this long between reads (the SDK's *_and_poll helpers).
POLL = {"openai-poll-after-ms": "100"}


class Call:
    """One request as a route reads it: the IDs in its path, its query and its JSON body."""

    def __init__(self, request: web.Request, raw: bytes):
        self.ids = request.match_info
        self.query = Request.build(request.method, request.path_qs, {}, raw)
        self.body = self.query.json()

    def __getitem__(self, name: str) -> str:
        return self.ids[name]


Answer = Callable[[BridgeService, Call], Awaitable[Any]]

ROUTES: list[tuple[str, str, Answer]] = [
    ("GET", "/v1/assistants", lambda s, c: s.list_assistants(c.query)),
    ("POST", "/v1/assistants", lambda s, c: s.create_assistant(c.body)),
    ("GET", "/v1/assistants/{assistant_id}", lambda s, c: s.get_assistant(c["assistant_id"])),
    (
        "POST",
        "/v1/assistants/{assistant_id}",
        lambda s, c: s.modify_assistant(c["assistant_id"], c.body),
    ),
    (
        "DELETE",
        "/v1/assistants/{assistant_id}",
        lambda s, c: s.delete_assistant(c["assistant_id"]),
    ),
    ("POST", "/v1/threads", lambda s, c: s.create_thread(c.body)),
    ("POST", "/v1/threads/runs", lambda s, c: s.create_thread_and_run(c.body)),
    ("GET", "/v1/threads/{thread_id}", lambda s, c: s.thread(c["thread_id"])),
    ("POST", "/v1/threads/{thread_id}", lambda s, c: s.modify_thread(c["thread_id"], c.body)),
    ("DELETE", "/v1/threads/{thread_id}", lambda s, c: s.delete_thread(c["thread_id"])),
    (
        "POST",
        "/v1/threads/{thread_id}/messages",
        lambda s, c: s.create_message(c["thread_id"], c.body),
    ),
    (
        "GET",
        "/v1/threads/{thread_id}/messages",
        lambda s, c: s.list_messages(c["thread_id"], c.query),
    ),
    (
        "GET",
        "/v1/threads/{thread_id}/messages/{message_id}",
        lambda s, c: s.get_message(c["thread_id"], c["message_id"]),
    ),
    (
        "POST",
        "/v1/threads/{thread_id}/messages/{message_id}",
        lambda s, c: s.modify_message(c["thread_id"], c["message_id"], c.body),
    ),
    (
        "DELETE",
        "/v1/threads/{thread_id}/messages/{message_id}",
        lambda s, c: s.delete_message(c["thread_id"], c["message_id"]),
    ),
    ("POST", "/v1/threads/{thread_id}/runs", lambda s, c: s.create_run(c["thread_id"], c.body)),
    ("GET", "/v1/threads/{thread_id}/runs", lambda s, c: s.list_runs(c["thread_id"], c.query)),
    (
        "GET",
        "/v1/threads/{thread_id}/runs/{run_id}",
        lambda s, c: s.run(c["thread_id"], c["run_id"]),
    ),
    (
        "POST",
        "/v1/threads/{thread_id}/runs/{run_id}",
        lambda s, c: s.modify_run(c["thread_id"], c["run_id"], c.body),
    ),
    (
        "POST",
        "/v1/threads/{thread_id}/runs/{run_id}/cancel",
        lambda s, c: s.cancel_run(c["thread_id"], c["run_id"]),
    ),
    (
        "POST",
        "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        lambda s, c: s.submit_tool_outputs(c["thread_id"], c["run_id"], c.body),
    ),
    (
        "GET",
        "/v1/threads/{thread_id}/runs/{run_id}/steps",
        lambda s, c: s.list_steps(c["thread_id"], c["run_id"], c.query),
    ),
    (
        "GET",
        "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}",
        lambda s, c: s.get_step(c["thread_id"], c["run_id"], c["step_id"]),
    ),
]


def _json(value: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=dump(value), content_type="application/json", headers=headers)


async def _stream(request: web.Request, feed: RunFeed) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
    )
    await response.prepare(request)
    async for batch in feed.follow():
        await response.write("".join(f"event: {n}\ndata: {d}\n\n" for n, d in batch).encode())
    await response.write_eof()
    return response


def handler(service: BridgeService, answer: Answer) -> Handler:
    """The aiohttp handler of one route: the call read, answered and sent, errors too."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            call = Call(request, await request.read())
            result = await answer(service, call)
        except ApiError as error:
            return error_response(error)
        if isinstance(result, tuple):  # a run leg started: the run, or its events
            run, feed = result
            return await _stream(request, feed) if call.body.get("stream") else _json(run, POLL)
        return _json(result, POLL if result.get("object") == "thread.run" else None)

    return handle


def add_routes(
    app: web.Application,
    service: BridgeService,
    wrap: Callable[[Handler], Handler] = lambda handler: handler,
) -> None:
    """Every Assistants route on `app`; `wrap` goes around each handler (the gateway checks
    its key and logs the call there) and sees errors already answered."""
    for method, path, answer in ROUTES:
        app.router.add_route(method, path, wrap(handler(service, answer)))


def bridge_app(service: BridgeService) -> web.Application:
    """An app serving the bridge alone; the service starts and stops with it."""
    app = web.Application()
    add_routes(app, service)
    add_lifecycle(app, service)
    return app


def add_lifecycle(app: web.Application, service: BridgeService) -> None:
    """Start with the app; on shutdown drain the legs before aiohttp waits for the requests
    (their streams end when the legs do), then close."""

    async def start(app: web.Application) -> None:
        await service.start()

    async def drain(app: web.Application) -> None:
        await service.drain()

    async def close(app: web.Application) -> None:
        await service.close()

    app.on_startup.append(start)
    app.on_shutdown.append(drain)
    app.on_cleanup.append(close)
