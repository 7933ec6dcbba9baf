"""The bridge's HTTP face: the Assistants routes as aiohttp.web handlers, mountable in any app.

`add_routes(app, service)` adds every route under /v1 and an error middleware that answers
in the API's shape; `bridge_app(service)` is an app of its own (tests, benchmarks). A stream
is written as server-sent events (`event:` and `data:` lines) and ends with `done`, as the
real API's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from aigw.bridge.feed import RunFeed
from aigw.bridge.service import BridgeService
from aigw.sandbox.http import ApiError, Request
from aigw.sandbox.store import page

SERVICE = web.AppKey("bridge_service", BridgeService)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(value: Any, status: int = 200) -> web.Response:
    from aigw.bridge.store import dump

    return web.Response(text=dump(value), status=status, content_type="application/json")


def _error(error: ApiError) -> web.Response:
    return _json(error.body(), error.status)


def answering_errors(handler: Handler) -> Handler:
    """The handler, with an ApiError it raises answered in the API's shape."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return _error(error)

    return handle


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    return Request.build(request.method, request.path_qs, {}, raw).json()


def _query(request: web.Request) -> Request:
    return Request.build(request.method, request.path_qs, {}, b"")


async def _stream(request: web.Request, feed: RunFeed, cursor: int = 0) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
    )
    await response.prepare(request)
    async for batch in feed.follow(cursor):
        await response.write("".join(f"event: {n}\ndata: {d}\n\n" for n, d in batch).encode())
    await response.write_eof()
    return response


def add_routes(
    app: web.Application,
    service: BridgeService,
    wrap: Callable[[Handler], Handler] = lambda handler: handler,
) -> None:
    """Every Assistants route on `app`; `wrap` goes around each handler (the gateway checks
    its key and logs the call there) and sees errors already answered."""
    app[SERVICE] = service
    poll = {"openai-poll-after-ms": "100"}

    def run_answer(
        request: web.Request, run: dict[str, Any], feed: RunFeed, stream: bool
    ) -> Awaitable[web.StreamResponse] | web.Response:
        if stream:
            return _stream(request, feed)
        response = _json(run)
        response.headers.update(poll)
        return response

    routes = web.RouteTableDef()
    s = service

    @routes.get("/v1/assistants")
    async def list_assistants(request: web.Request) -> web.Response:
        return _json(page(await s.store.objects("assistant"), _query(request)))

    @routes.post("/v1/assistants")
    async def create_assistant(request: web.Request) -> web.Response:
        return _json(await s.create_assistant(await _body(request)))

    @routes.get("/v1/assistants/{assistant_id}")
    async def get_assistant(request: web.Request) -> web.Response:
        return _json(await s.get("assistant", request.match_info["assistant_id"], "assistant"))

    @routes.post("/v1/assistants/{assistant_id}")
    async def modify_assistant(request: web.Request) -> web.Response:
        body = await _body(request)
        return _json(await s.modify_assistant(request.match_info["assistant_id"], body))

    @routes.delete("/v1/assistants/{assistant_id}")
    async def delete_assistant(request: web.Request) -> web.Response:
        return _json(
            await s.delete(
                "assistant", request.match_info["assistant_id"], "assistant", "assistant.deleted"
            )
        )

    @routes.post("/v1/threads")
    async def create_thread(request: web.Request) -> web.Response:
        return _json(await s.create_thread(await _body(request)))

    @routes.post("/v1/threads/runs")
    async def create_thread_and_run(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        run, feed = await s.create_thread_and_run(body)
        return await _maybe(run_answer(request, run, feed, bool(body.get("stream"))))

    @routes.get("/v1/threads/{thread_id}")
    async def get_thread(request: web.Request) -> web.Response:
        return _json(await s.thread(request.match_info["thread_id"]))

    @routes.post("/v1/threads/{thread_id}")
    async def modify_thread(request: web.Request) -> web.Response:
        body = await _body(request)
        return _json(await s.modify_thread(request.match_info["thread_id"], body))

    @routes.delete("/v1/threads/{thread_id}")
    async def delete_thread(request: web.Request) -> web.Response:
        thread_id = request.match_info["thread_id"]
        for leg, task in list(s.legs.values()):
            if leg.run["thread_id"] == thread_id:
                task.cancel()
        return _json(await s.delete("thread", thread_id, "thread", "thread.deleted"))

    @routes.post("/v1/threads/{thread_id}/messages")
    async def create_message(request: web.Request) -> web.Response:
        body = await _body(request)
        return _json(await s.create_message(request.match_info["thread_id"], body))

    @routes.get("/v1/threads/{thread_id}/messages")
    async def list_messages(request: web.Request) -> web.Response:
        thread = await s.thread(request.match_info["thread_id"])
        query = _query(request)
        run_id = query.query.get("run_id")
        messages = await s.store.objects("message", thread_id=thread["id"])
        if run_id is not None:
            messages = [m for m in messages if m.get("run_id") == run_id]
        return _json(page(messages, query))

    @routes.get("/v1/threads/{thread_id}/messages/{message_id}")
    async def get_message(request: web.Request) -> web.Response:
        info = request.match_info
        return _json(await s.in_thread("message", info["message_id"], info["thread_id"], "message"))

    @routes.post("/v1/threads/{thread_id}/messages/{message_id}")
    async def modify_message(request: web.Request) -> web.Response:
        info, body = request.match_info, await _body(request)
        return _json(await s.modify_message(info["thread_id"], info["message_id"], body))

    @routes.delete("/v1/threads/{thread_id}/messages/{message_id}")
    async def delete_message(request: web.Request) -> web.Response:
        info = request.match_info
        message = await s.in_thread("message", info["message_id"], info["thread_id"], "message")
        return _json(await s.delete("message", message["id"], "message", "thread.message.deleted"))

    @routes.post("/v1/threads/{thread_id}/runs")
    async def create_run(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        run, feed = await s.create_run(request.match_info["thread_id"], body)
        return await _maybe(run_answer(request, run, feed, bool(body.get("stream"))))

    @routes.get("/v1/threads/{thread_id}/runs")
    async def list_runs(request: web.Request) -> web.Response:
        thread = await s.thread(request.match_info["thread_id"])
        runs = [await s.settled(r) for r in await s.store.objects("run", thread_id=thread["id"])]
        return _json(page(runs, _query(request)))

    @routes.get("/v1/threads/{thread_id}/runs/{run_id}")
    async def get_run(request: web.Request) -> web.Response:
        info = request.match_info
        response = _json(await s.run(info["thread_id"], info["run_id"]))
        response.headers.update(poll)
        return response

    @routes.post("/v1/threads/{thread_id}/runs/{run_id}")
    async def modify_run(request: web.Request) -> web.Response:
        info, body = request.match_info, await _body(request)
        return _json(await s.modify_run(info["thread_id"], info["run_id"], body))

    @routes.post("/v1/threads/{thread_id}/runs/{run_id}/cancel")
    async def cancel_run(request: web.Request) -> web.Response:
        info = request.match_info
        return _json(await s.cancel_run(info["thread_id"], info["run_id"]))

    @routes.post("/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
    async def submit_tool_outputs(request: web.Request) -> web.StreamResponse:
        info, body = request.match_info, await _body(request)
        run, feed = await s.submit_tool_outputs(info["thread_id"], info["run_id"], body)
        return await _maybe(run_answer(request, run, feed, bool(body.get("stream"))))

    @routes.get("/v1/threads/{thread_id}/runs/{run_id}/steps")
    async def list_steps(request: web.Request) -> web.Response:
        info = request.match_info
        run = await s.run(info["thread_id"], info["run_id"])
        return _json(page(await s.store.objects("step", run_id=run["id"]), _query(request)))

    @routes.get("/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
    async def get_step(request: web.Request) -> web.Response:
        info = request.match_info
        run = await s.run(info["thread_id"], info["run_id"])
        step = await s.store.get("step", info["step_id"])
        if step is None or step["run_id"] != run["id"]:
            raise ApiError(404, f"No run step found with id '{info['step_id']}'.")
        return _json(step)

    for route in routes:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, route.path, wrap(answering_errors(route.handler)))


async def _maybe(answer: Awaitable[web.StreamResponse] | web.Response) -> web.StreamResponse:
    if isinstance(answer, web.StreamResponse):
        return answer
    return await answer


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
