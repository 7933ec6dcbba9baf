"""/v1/chat/completions: the runs' deterministic replies, as a Chat Completions API answers them.

The same Responder that writes a run's reply (aigw/sandbox/responder.py) answers here, so the
Assistants bridge (aigw/bridge/) can be tested against the sandbox as its model:

- the chat's messages become the Conversation: `system` is the instructions, `user` and
  `assistant` messages the thread, and the `tool` messages that follow the last assistant
  message's `tool_calls` are the submitted tool results (EchoResponder's rule 1);
- function calls come back as `tool_calls` (finish_reason `tool_calls`), text as `content`;
- the failure marker in the last user message answers an error in the API's shape
  (server_error 500, rate_limit_exceeded 429, invalid_prompt 400);
- a prompt longer than `SandboxOptions.context_tokens` answers 400 context_length_exceeded.

Streaming (`"stream": true`) sends `chat.completion.chunk`s as `data:` lines and `[DONE]`; the
usage chunk comes last when `stream_options.include_usage` is set, as with the real API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aigw.sandbox import validate
from aigw.sandbox.http import ApiError, EventStream, Request, Router
from aigw.sandbox.lifecycle import FAIL_MARKER, chunks, token_usage, tokens
from aigw.sandbox.responder import Conversation, Reply, ToolResult
from aigw.sandbox.store import SandboxState, new_object_id

if TYPE_CHECKING:
    from aigw.sandbox.server import SandboxOptions

_FAILURES = {
    "server_error": (500, "server_error", "The server had an error while processing your request."),
    "rate_limit_exceeded": (429, "requests", "Rate limit reached for requests."),
    "invalid_prompt": (400, "invalid_request_error", "Invalid prompt."),
}


def _text(content: Any, param: str) -> str:
    """A chat message's content (a string or text parts) as plain text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and "text" in part
        )
    raise ApiError(400, f"Invalid type for '{param}': expected a string or an array.", param=param)


def conversation_of(body: dict[str, Any]) -> Conversation:
    """The Responder's view of a chat request; checks what it reads and answers 400 otherwise."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(
            400,
            "Invalid 'messages': expected a non-empty array.",
            param="messages",
            code="empty_array" if messages == [] else None,
        )
    instructions: list[str] = []
    thread: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}  # of the last assistant message with tool_calls
    results: list[ToolResult] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        text = _text(message.get("content") if role else None, f"messages[{i}].content")
        if role in ("system", "developer"):
            instructions.append(text)
        elif role in ("user", "assistant"):
            part = {"type": "text", "text": {"value": text, "annotations": []}}
            thread.append({"role": role, "content": [part] if text else []})
            results = []
            if role == "assistant":
                calls = {c["id"]: c["function"] for c in message.get("tool_calls") or []}
        elif role == "tool":
            call = calls.get(message.get("tool_call_id", ""))
            if call is None:
                raise ApiError(
                    400,
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceding message with 'tool_calls' (messages[{i}]).",
                    param=f"messages[{i}].tool_call_id",
                )
            results.append(ToolResult(call["name"], call["arguments"], text))
        else:
            raise ApiError(
                400,
                f"Invalid value for 'messages[{i}].role': expected one of 'system', 'developer', "
                "'user', 'assistant' or 'tool'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
    return Conversation(
        messages=thread,
        instructions="\n".join(instructions),
        model=str(body.get("model")),
        tools=validate.tools(body),
        tool_results=results,
    )


def _prompt_tokens(body: dict[str, Any]) -> int:
    texts = [_text(m.get("content"), "messages") for m in body["messages"] if isinstance(m, dict)]
    return sum(tokens(t) for t in texts)


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": new_object_id("call_"),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in reply.calls
    ]


def _completion_tokens(reply: Reply) -> int:
    if reply.calls:
        return sum(tokens(c.name + c.arguments) for c in reply.calls)
    return tokens(reply.text)


def register(router: Router, state: SandboxState, options: SandboxOptions) -> None:
    """Add the /chat/completions route."""

    @router.route("POST", "/v1/chat/completions")
    def create(request: Request) -> dict[str, Any] | EventStream:
        body = request.json()
        state.chat_requests.append(body)
        model = validate.required(body, "model")
        conversation = conversation_of(body)
        prompt = _prompt_tokens(body)
        if prompt > options.context_tokens:
            raise ApiError(
                400,
                f"This model's maximum context length is {options.context_tokens} tokens. "
                f"However, your messages resulted in {prompt} tokens. Please reduce the length "
                "of the messages.",
                param="messages",
                code="context_length_exceeded",
            )
        failure = FAIL_MARKER.search(conversation.last_user_text() or "")
        if failure:
            code = failure.group(1) or "server_error"
            status, kind, text = _FAILURES[code]
            raise ApiError(status, f"Sandbox: {text}", type=kind, code=code)
        reply = options.responder.respond(conversation)
        usage = token_usage(prompt, _completion_tokens(reply))
        head = {
            "id": new_object_id("chatcmpl-"),
            "created": state.now(),
            "model": model,
            "system_fingerprint": "fp_sandbox",
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return EventStream(_stream(head, reply, usage if include_usage else None))
        calls = _tool_calls(reply)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if calls else reply.text,
            "refusal": None,
            "annotations": [],
        }
        if calls:
            message["tool_calls"] = calls
        return {
            **head,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }


def _stream(
    head: dict[str, Any], reply: Reply, usage: dict[str, int] | None
) -> Iterator[tuple[str | None, str]]:
    """The chunks of one reply; chat streams name no events (`data:` lines only)."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, str]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        data = {**head, "object": "chat.completion.chunk", "choices": [choice]}
        return None, json.dumps(data)

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    calls = _tool_calls(reply)
    for index, call in enumerate(calls):
        # The name first, the arguments after: clients must put a call together from pieces.
        fn = call["function"]
        named = {**call, "index": index, "function": {"name": fn["name"], "arguments": ""}}
        yield chunk({"tool_calls": [named]})
        yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fn["arguments"]}}]})
    if not calls:
        for piece in chunks(reply.text):
            yield chunk({"content": piece})
    yield chunk({}, "tool_calls" if calls else "stop")
    if usage is not None:
        yield (
            None,
            json.dumps({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}),
        )
    yield None, "[DONE]"
