"""/v1/assistants: list, create, get, modify, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aigw.sandbox import validate
from aigw.sandbox.http import Request, Router
from aigw.sandbox.store import SandboxState, new_object_id, page

if TYPE_CHECKING:
    from aigw.sandbox.server import SandboxOptions


def apply(assistant: dict[str, Any], body: dict[str, Any]) -> None:
    """Validate and set the assistant fields `body` gives."""
    for name, limit in (("name", 256), ("description", 512), ("instructions", 256_000)):
        if name in body:
            assistant[name] = validate.string(body, name, limit)
    if "model" in body:
        assistant["model"] = validate.required(body, "model")
    assistant["tools"] = validate.tools(body, assistant.get("tools"))
    assistant["metadata"] = validate.metadata(body, assistant.get("metadata"))
    if "temperature" in body:
        assistant["temperature"] = validate.number(body, "temperature", 0, 2)
    if "top_p" in body:
        assistant["top_p"] = validate.number(body, "top_p", 0, 1)
    for passthrough in ("tool_resources", "response_format", "reasoning_effort"):
        if passthrough in body:
            assistant[passthrough] = body[passthrough]


def assistant_from(body: dict[str, Any], created_at: int) -> dict[str, Any]:
    """An assistant from a create body, all checked; nothing stored."""
    validate.required(body, "model")
    assistant: dict[str, Any] = {
        "id": new_object_id("asst_"),
        "object": "assistant",
        "created_at": created_at,
        "name": None,
        "description": None,
        "model": body["model"],
        "instructions": None,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    apply(assistant, body)
    return assistant


def modified(assistant: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The assistant as a modify body leaves it, all checked before anything changes."""
    updated = dict(assistant)
    apply(updated, body)
    return updated


def register(router: Router, state: SandboxState, options: SandboxOptions) -> None:
    """Add the /assistants routes."""

    @router.route("GET", "/v1/assistants")
    def list_assistants(request: Request) -> dict[str, Any]:
        return page(state.assistants.values(), request)

    @router.route("POST", "/v1/assistants")
    def create_assistant(request: Request) -> dict[str, Any]:
        assistant = assistant_from(request.json(), state.now())
        return state.assistants.add(assistant)

    @router.route("GET", "/v1/assistants/{assistant_id}")
    def get_assistant(request: Request) -> dict[str, Any]:
        return state.assistants.get(request.params["assistant_id"])

    @router.route("POST", "/v1/assistants/{assistant_id}")
    def modify_assistant(request: Request) -> dict[str, Any]:
        assistant = state.assistants.get(request.params["assistant_id"])
        assistant.update(modified(assistant, request.json()))
        return assistant

    @router.route("DELETE", "/v1/assistants/{assistant_id}")
    def delete_assistant(request: Request) -> dict[str, Any]:
        assistant = state.assistants.pop(request.params["assistant_id"])
        return {"id": assistant["id"], "object": "assistant.deleted", "deleted": True}
