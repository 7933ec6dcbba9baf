"""Answers in OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import orjson
from aiohttp import web

from aigw.sandbox.http import ApiError


def error_response(error: ApiError) -> web.Response:
    """The aiohttp response for an ApiError (the sandbox's type: one error shape for both)."""
    return web.Response(
        status=error.status,
        body=orjson.dumps(error.body()),
        content_type="application/json",
        headers=error.headers,
    )


def gateway_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return error_response(
        ApiError(status, message, type=type, param=param, code=code, headers=headers)
    )
