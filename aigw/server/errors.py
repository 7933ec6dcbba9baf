"""Answers in OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from aiohttp import web

from aigw.common.api_errors import ApiError, error_response


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
