"""create_app: the gateway's aiohttp application — the one place its routes are listed.

    /v1/{anything}   the proxy (server/proxy.py): gateway key, policies, upstream, log rows
    /healthz /readyz /metrics   operations (server/ops.py), no gateway key needed
    /dashboard/      the metrics page (aigw/dashboard), behind the gateway key

Building on it (bridge, dashboard): call `create_app(settings, options)`, then add routes or
mount a sub-application before the server starts, e.g. `app.add_subapp("/dashboard", sub)`;
a handler reaches the shared parts as `request.app[RUNTIME]` (a sub-app through
`request.config_dict[RUNTIME]`) and checks the gateway key with `require_gateway_key(request)`.
Routes added before /v1/{tail} is matched win, so add specific /v1 routes with `prepend=True`
semantics by calling `add_routes` before `mount_proxy` when building your own app.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

from aiohttp import web

from aigw.server.errors import gateway_error
from aigw.server.runtime import RUNTIME, Runtime, ServerOptions
from aigw.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    settings: Settings, options: ServerOptions, *, proxy: bool = True
) -> web.Application:
    """The application; its Runtime is built at start-up (in the worker process) and closed
    after the drain. `proxy=False` leaves /v1 free for an app that mounts its own handlers
    first and then calls `mount_proxy`."""
    from aigw.server import ops

    app = web.Application(
        client_max_size=settings.max_body_bytes, middlewares=[openai_shaped_errors]
    )
    app.router.add_get("/healthz", ops.healthz)
    app.router.add_get("/readyz", ops.readyz)
    app.router.add_get("/metrics", ops.metrics)
    from aigw.dashboard import dashboard_app

    app.add_subapp("/dashboard", dashboard_app(settings, guard=dashboard_key))
    if options.assistants == "local":  # before the proxy: these routes must win over it
        from aigw.server.assistants import mount_assistants

        mount_assistants(app, settings, options)
    if proxy:
        mount_proxy(app)

    async def start(app: web.Application) -> None:
        runtime = Runtime.build(settings, options)
        await runtime.start()
        app[RUNTIME] = runtime

    async def close(app: web.Application) -> None:
        await app[RUNTIME].close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)
    return app


def mount_proxy(app: web.Application) -> None:
    """Send every other /v1 path to the upstream (last: specific routes added before win)."""
    from aigw.server.proxy import proxy

    app.router.add_route("*", "/v1/{tail:.*}", proxy)
    app.router.add_route("*", "/v1", proxy)


def require_gateway_key(request: web.Request) -> None:
    """Raise a 401 in OpenAI's shape unless the request carries an accepted gateway key."""
    runtime = request.config_dict[RUNTIME]
    header = runtime.settings.gateway_key_header
    if not runtime.key_accepted(request.headers.get(header)):
        raise web.HTTPUnauthorized(
            body=gateway_error(401, f"A valid gateway key is required in {header}.").body,
            content_type="application/json",
        )


@web.middleware
async def dashboard_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The dashboard behind the gateway key: in the key's header (scripts), or as the password
    of HTTP Basic auth, which a browser asks for once (a page load cannot send a header)."""
    runtime = request.config_dict[RUNTIME]
    given = request.headers.get(runtime.settings.gateway_key_header)
    if given is None:
        given = basic_password(request.headers.get("Authorization"))
    if not runtime.key_accepted(given):
        return gateway_error(
            401,
            f"A valid gateway key is required in {runtime.settings.gateway_key_header}"
            " or as the password (any user name).",
            headers={"WWW-Authenticate": 'Basic realm="aigw dashboard", charset="UTF-8"'},
        )
    return await handler(request)


def basic_password(authorization: str | None) -> str | None:
    """The password of an HTTP Basic `Authorization` header; None for anything else."""
    import base64
    import binascii

    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


@web.middleware
async def openai_shaped_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer in OpenAI's shape; never a traceback, whatever went wrong."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return gateway_error(exc.status, exc.reason, code=None, headers=_kept(exc))
    except Exception as exc:
        print(
            f"aigw gateway: internal error on {request.method} {request.path}: "
            f"{type(exc).__name__}",
            file=sys.stderr,
            flush=True,
        )
        return gateway_error(
            500, "The gateway failed on this request.", type="server_error", code="gateway_error"
        )


def _kept(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
