"""The bridge's HTTP face: the Assistants routes as aiohttp.web handlers, mountable in any app.

`add_routes(app, service)` adds every route under /v1, each answering its errors in the API's
shape; `bridge_app(service)` is an app of its own (tests, benchmarks). Each route is one line
of ROUTES: the service method that answers it. What the call returns is sent as JSON; a call
that starts a run leg returns the run and its feed, sent as the run or — when the body asks to
stream — as server-sent events (`event:` and `data:` lines, ending with `done`, as the real
API's).
"""

from __future__ import annotations

import inspect
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


Answer = Callable[..., Awaitable[Any]]

# Each route is answered by one BridgeService method. Its parameters say what it is given, by
# name: the IDs in the path, `body` (the JSON body) and `query` (the request, for its query).
ROUTES: list[tuple[str, str, Answer]] = [
    ("GET", "/v1/assistants", BridgeService.list_assistants),
    ("POST", "/v1/assistants", BridgeService.create_assistant),
    ("GET", "/v1/assistants/{assistant_id}", BridgeService.get_assistant),
    ("POST", "/v1/assistants/{assistant_id}", BridgeService.modify_assistant),
    ("DELETE", "/v1/assistants/{assistant_id}", BridgeService.delete_assistant),
    ("POST", "/v1/threads", BridgeService.create_thread),
    ("POST", "/v1/threads/runs", BridgeService.create_thread_and_run),
    ("GET", "/v1/threads/{thread_id}", BridgeService.thread),
    ("POST", "/v1/threads/{thread_id}", BridgeService.modify_thread),
    ("DELETE", "/v1/threads/{thread_id}", BridgeService.delete_thread),
    ("POST", "/v1/threads/{thread_id}/messages", BridgeService.create_message),
    ("GET", "/v1/threads/{thread_id}/messages", BridgeService.list_messages),
    ("GET", "/v1/threads/{thread_id}/messages/{message_id}", BridgeService.get_message),
    ("POST", "/v1/threads/{thread_id}/messages/{message_id}", BridgeService.modify_message),
    ("DELETE", "/v1/threads/{thread_id}/messages/{message_id}", BridgeService.delete_message),
    ("POST", "/v1/threads/{thread_id}/runs", BridgeService.create_run),
    ("GET", "/v1/threads/{thread_id}/runs", BridgeService.list_runs),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}", BridgeService.run),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}", BridgeService.modify_run),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}/cancel", BridgeService.cancel_run),
    (
        "POST",
        "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        BridgeService.submit_tool_outputs,
    ),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps", BridgeService.list_steps),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}", BridgeService.get_step),
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
    wanted = [name for name in inspect.signature(answer).parameters if name != "self"]

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            query = Request.build(request.method, request.path_qs, {}, await request.read())
            body = query.json()
            given = {**request.match_info, "query": query, "body": body}
            result = await answer(service, **{name: given[name] for name in wanted})
        except ApiError as error:
            return error_response(error)
        if isinstance(result, tuple):  # a run leg started: the run, or its events
            run, feed = result
            return await _stream(request, feed) if body.get("stream") else _json(run, POLL)
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
