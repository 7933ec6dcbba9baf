"""The model behind the bridge: one Chat Completions API, called over aiohttp.

`ChatModel.complete(body)` yields Pieces (text, pieces of tool calls, usage) whether the API
streamed them or answered at once, so a run leg reads both the same way. Everything the API
can do wrong — an error status, a broken stream, silence past the deadline — is raised as
one ModelError carrying the `last_error` code the Assistants API knows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True)
class CallPiece:
    """Part of one tool call, as a chat stream sends it (keyed by `index`)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Piece:
    text: str = ""
    calls: list[CallPiece] = field(default_factory=list)
    usage: dict[str, int] | None = None


class ModelError(Exception):
    """The model API failed; `code` is a run's last_error code, `status` the HTTP status."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def error_of(status: int, payload: bytes) -> ModelError:
    """An error answer of the model API as the run's last_error."""
    try:
        error = orjson.loads(payload).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    detail = error.get("message") if isinstance(error, dict) else None
    upstream_code = error.get("code") if isinstance(error, dict) else None
    text = f"The model API answered {status}"
    text += f" ({upstream_code})" if upstream_code else ""
    text += f": {detail}" if detail else "."
    if status == 429:
        return ModelError("rate_limit_exceeded", text, status)
    if status == 400 and upstream_code in ("context_length_exceeded", "invalid_prompt"):
        return ModelError("invalid_prompt", text, status)
    return ModelError("server_error", text, status)


def _usage(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {key: int(value.get(key) or 0) for key in keys}


def _calls(raw: Any) -> list[CallPiece]:
    pieces = []
    for position, call in enumerate(raw or []):
        function = call.get("function") or {}
        pieces.append(
            CallPiece(
                index=call.get("index", position),
                id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        )
    return pieces


def pieces_of_chunk(chunk: dict[str, Any]) -> Piece:
    if chunk.get("error"):
        raise error_of(500, orjson.dumps(chunk))
    return _piece(chunk, "delta")


def piece_of_completion(completion: dict[str, Any]) -> Piece:
    return _piece(completion, "message")


def _piece(body: dict[str, Any], part: str) -> Piece:
    """The text, tool calls and usage of a completion (`message`) or a stream chunk (`delta`)."""
    choices = body.get("choices") or []
    content = (choices[0].get(part) or {}) if choices else {}
    return Piece(
        text=content.get("content") or "",
        calls=_calls(content.get("tool_calls")),
        usage=_usage(body.get("usage")),
    )


class ChatModel:
    """A Chat Completions base URL (…/v1), its key, and a deadline for each request."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 120.0,
        headers: dict[str, str] | None = None,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"authorization": f"Bearer {api_key}", **(headers or {})}
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        import aiohttp

        # One pool kept warm for every run; no total cap, the model API sets its own limits.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, body: dict[str, Any]) -> AsyncIterator[Piece]:
        import aiohttp

        assert self._session is not None, "open() first"
        try:
            async with self._session.post(
                self.url, data=orjson.dumps(body), headers=self.headers | _JSON
            ) as response:
                if response.status >= 400:
                    raise error_of(response.status, await response.read())
                if not body.get("stream"):
                    yield piece_of_completion(orjson.loads(await response.read()))
                    return
                async for data in _sse_data(response.content):
                    if data == b"[DONE]":
                        return
                    yield pieces_of_chunk(orjson.loads(data))
        except TimeoutError:
            raise ModelError(
                "server_error", f"The model API did not answer within {self.timeout_s:g} s."
            ) from None
        except (aiohttp.ClientError, orjson.JSONDecodeError, asyncio.IncompleteReadError) as e:
            raise ModelError(
                "server_error", f"The model API failed: {e or type(e).__name__}."
            ) from None


_JSON = {"content-type": "application/json"}


async def _sse_data(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The `data:` payload of each server-sent event (multi-line data joined by newlines)."""
    lines: list[bytes] = []
    async for raw in content:
        line = raw.rstrip(b"\r\n")
        if not line:
            if lines:
                yield b"\n".join(lines)
                lines = []
        elif line.startswith(b"data:"):
            lines.append(line[5:].lstrip(b" "))
    if lines:
        yield b"\n".join(lines)
