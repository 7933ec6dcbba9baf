"""`aigw gateway serve --assistants local`: the gateway answers the Assistants API itself.

The routes are the bridge's (aigw/bridge/), mounted before the proxy so they win over it;
each run is made through the Chat Completions API at `--model-url`, with OPENAI_API_KEY as
its key. Every Assistants call is checked for the gateway key and logged like the proxy's
rows (route `bridge`), and so is every request the bridge makes to the model (route `model`,
with its tokens, run, thread and assistant), so `aigw logs` and `aigw metrics` count both.

State: the Postgres/Supabase database when SUPABASE_DB_URL or DATABASE_URL is set (shared by
every worker and instance), else `bridge.db` in AIGW_HOME.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from aigw.bridge.http import Handler, add_lifecycle, add_routes
from aigw.bridge.legs import ModelCall
from aigw.bridge.model import ChatModel
from aigw.bridge.serve import make_store
from aigw.bridge.service import BridgeService
from aigw.common.log_record import LogRecord, new_id
from aigw.gateway.endpoints import endpoint_of
from aigw.server.app import require_gateway_key
from aigw.server.runtime import RUNTIME

if TYPE_CHECKING:
    from aigw.server.runtime import ServerOptions
    from aigw.settings import Settings

SOURCE = "aigw-gateway"


def mount_assistants(app: web.Application, settings: Settings, options: ServerOptions) -> None:
    """The bridge's routes and lifecycle on the gateway's app (before `mount_proxy`)."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    database = settings.db_url or str(settings.home / "bridge.db")
    store, exclusive = make_store(database, lease_s=settings.timeout + 60.0)
    model = ChatModel(options.model_url or "", key, timeout_s=settings.timeout)

    def on_call(call: ModelCall) -> None:
        app[RUNTIME].writer.add(model_row(call))

    service = BridgeService(
        store,
        model,
        # Workers share the SQLite file: a run in flight is another worker's until its lease ends.
        exclusive_store=exclusive and options.workers <= 1,
        drain_s=settings.drain_timeout,
        on_call=on_call,
    )
    add_routes(app, service, wrap=checked_and_logged)
    add_lifecycle(app, service)


def checked_and_logged(handler: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        require_gateway_key(request)
        started = time.time()
        response = await handler(request)
        request.config_dict[RUNTIME].writer.add(
            call_row(request, response.status, (time.time() - started) * 1000, started)
        )
        return response

    return handle


def call_row(request: web.Request, status: int, latency_ms: float, started: float) -> LogRecord:
    endpoint = endpoint_of(request.path)
    ids = request.match_info
    return LogRecord(
        endpoint=endpoint.template,
        method=request.method,
        id=new_id(int(started * 1000)),
        created_at=datetime.fromtimestamp(started, UTC),
        status_code=status,
        latency_ms=latency_ms,
        path=endpoint.path,
        route="bridge",
        thread_id=ids.get("thread_id"),
        run_id=ids.get("run_id"),
        assistant_id=ids.get("assistant_id"),
        source=SOURCE,
    )


def model_row(call: ModelCall) -> LogRecord:
    usage = call.usage or {}
    return LogRecord(
        endpoint=call.endpoint,
        method="POST",
        status_code=call.status_code,
        latency_ms=float(call.latency_ms),
        error_message=call.error,
        path=call.endpoint,
        route="model",
        thread_id=call.thread_id,
        run_id=call.run_id,
        assistant_id=call.assistant_id,
        model=call.model,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        total_tokens=usage.get("total_tokens"),
        source=SOURCE,
    )
