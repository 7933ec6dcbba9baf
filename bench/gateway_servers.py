"""The processes bench/gateway.py measures, each started as `python -m bench.gateway_servers KIND`.

* `static`: a trivial upstream (aiohttp) answering the two benchmarked endpoints with fixed JSON,
  and a short server-sent-event stream for the time-to-first-byte figure.
* `bare-aiohttp`: a pass-through proxy, aiohttp's server and client on uvloop, no policy.
* `bare-uvicorn`: the same pass-through on uvicorn (httptools, uvloop) with httpx2's async client.
Each prints `listening on http://HOST:PORT/v1` on its first stdout line, as aigw's servers do.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

ASSISTANTS = (
    b'{"object":"list","data":['
    + b",".join(
        b'{"id":"asst_%03d","object":"assistant","created_at":1700000000,"name":"bench",'
        b'"model":"gpt-4o-mini","instructions":"Answer briefly.","tools":[],"metadata":{}}' % i
        for i in range(20)
    )
    + b'],"first_id":"asst_000","last_id":"asst_019","has_more":false}'
)
THREAD = b'{"id":"thread_abc","object":"thread","created_at":1700000000,"metadata":{}}'
EVENTS = [
    b'event: thread.run.created\ndata: {"id":"run_1","object":"thread.run"}\n\n',
    b'event: thread.message.delta\ndata: {"delta":{"content":[]}}\n\n',
    b"event: done\ndata: [DONE]\n\n",
]
STREAM_GAP_S = 0.02  # between events, so the first byte is clearly earlier than the last


def _listening(sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    print(f"listening on http://{host}:{port}/v1", flush=True)


def _bound(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


async def _serve_aiohttp(app: Any, port: int) -> None:
    from aiohttp import web

    sock = _bound(port)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    _listening(sock)
    await asyncio.Event().wait()


def static_app() -> Any:
    from aiohttp import web

    async def assistants(request: web.Request) -> web.Response:
        return web.Response(body=ASSISTANTS, content_type="application/json")

    async def threads(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=THREAD, content_type="application/json")

    async def stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in EVENTS:
            await response.write(event)
            await asyncio.sleep(STREAM_GAP_S)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/v1/assistants", assistants)
    app.router.add_post("/v1/threads", threads)
    app.router.add_post("/v1/threads/{thread_id}/runs", stream)
    return app


_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def bare_aiohttp_app(upstream: str) -> Any:
    import aiohttp
    from aiohttp import web

    async def start(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
        )

    async def proxy(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        session: aiohttp.ClientSession = request.app["session"]
        url = upstream + request.rel_url.path_qs.removeprefix("/v1")
        async with session.request(
            request.method, url, headers=headers, data=body or None
        ) as answer:
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            response = web.StreamResponse(status=answer.status, headers=out)
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.on_startup.append(start)
    app.router.add_route("*", "/v1/{tail:.*}", proxy)
    return app


def bare_uvicorn_app(upstream: str) -> Any:
    import httpx2

    client = httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=None))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k, v) for k, v in scope["headers"] if k.decode().lower() not in _HOP]
        query = scope["query_string"].decode()
        url = upstream + scope["path"].removeprefix("/v1") + (f"?{query}" if query else "")
        request = client.build_request(scope["method"], url, headers=headers, content=body)
        answer = await client.send(request, stream=True)
        try:
            out = [(k, v) for k, v in answer.headers.raw if k.decode().lower() not in _HOP]
            await send(
                {"type": "http.response.start", "status": answer.status_code, "headers": out}
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await answer.aclose()

    return app


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1]) if len(argv) > 1 else 0
    upstream = argv[2] if len(argv) > 2 else ""
    if kind == "bare-uvicorn":
        import uvicorn

        sock = _bound(port)
        _listening(sock)
        config = uvicorn.Config(
            bare_uvicorn_app(upstream),
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            lifespan="off",
        )
        uvicorn.Server(config).run(sockets=[sock])
        return
    import uvloop

    app = static_app() if kind == "static" else bare_aiohttp_app(upstream)
    uvloop.run(_serve_aiohttp(app, port))


if __name__ == "__main__":
    main(sys.argv[1:])
