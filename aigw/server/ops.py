"""Operations endpoints: /healthz (alive), /readyz (ready to serve), /metrics (Prometheus)."""

from __future__ import annotations

import orjson
from aiohttp import web

from aigw.gateway.circuit import CLOSED
from aigw.server.metrics import CONTENT_TYPE
from aigw.server.runtime import RUNTIME
from aigw.storage import remote_kind


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 while the upstream's circuit is open or the local store cannot be written."""
    runtime = request.app[RUNTIME]
    circuit = await runtime.read_circuit()
    store_error = runtime.local.writable()
    writable = store_error is None
    ready = writable and circuit == CLOSED
    body = {
        "status": "ready" if ready else "not ready",
        "upstream": {"host": runtime.upstream_host, "circuit": circuit},
        "local_store": {"writable": writable, "error": store_error},
        "state": runtime.state_mode,
        "log_rows": {
            "uncommitted": runtime.writer.pending(),
            "pending_sync": runtime.logs.pending_count(),
            "write_error": runtime.writer.problem,
            "sync_error": runtime.sync.last_error if runtime.sync is not None else None,
            "remote": remote_kind(runtime.settings),  # None: the rows stay local
        },
        "in_flight": runtime.in_flight,
        "worker": runtime.options.worker,  # which of --workers answered
    }
    return web.Response(
        status=200 if ready else 503, body=orjson.dumps(body), content_type="application/json"
    )


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    await runtime.read_circuit()
    return web.Response(body=runtime.metrics.exposition(), headers={"content-type": CONTENT_TYPE})
