"""/v1/threads and /v1/threads/{id}/messages: create, get, modify, delete, list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aigw.sandbox import validate
from aigw.sandbox.http import ApiError, Request, Router
from aigw.sandbox.store import SandboxState, new_object_id, page

if TYPE_CHECKING:
    from aigw.sandbox.server import SandboxOptions


def advance_thread(state: SandboxState, thread_id: str) -> None:
    """Bring the thread's runs up to the clock (see aigw/sandbox/lifecycle.py)."""
    now = state.clock()
    for run_id, machine in list(state.machines.items()):
        if machine.run["thread_id"] == thread_id:
            machine.advance(now)
            if machine.next_change() is None:  # settled: nothing will change it by itself
                del state.machines[run_id]


def get_thread(state: SandboxState, thread_id: str) -> dict[str, Any]:
    """The thread, its runs advanced to the clock's time first."""
    thread = state.threads.get(thread_id)
    advance_thread(state, thread_id)
    return thread


# A thread has at most one run in these statuses.
ACTIVE_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")


def active_run(state: SandboxState, thread_id: str) -> dict[str, Any] | None:
    """The thread's run that has not stopped, if any."""
    for machine in state.machines.values():
        run = machine.run
        if run["thread_id"] == thread_id and run["status"] in ACTIVE_STATUSES:
            return run
    return None


def _content(value: Any, param: str) -> list[dict[str, Any]]:
    """Request content (a string or parts) in the shape messages answer with."""
    if isinstance(value, str):
        if not value:
            raise ApiError(
                400,
                f"Invalid '{param}': string too short. Expected a string with minimum length 1, "
                "but got an empty string instead.",
                param=param,
                code="string_below_min_length",
            )
        return [{"type": "text", "text": {"value": value, "annotations": []}}]
    if not isinstance(value, list) or not value:
        raise ApiError(
            400,
            f"Invalid '{param}': expected a non-empty string or a non-empty array of parts.",
            param=param,
        )
    parts = []
    for i, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
        elif kind in ("image_file", "image_url") and isinstance(part.get(kind), dict):
            parts.append({"type": kind, kind: dict(part[kind])})
        else:
            raise ApiError(
                400,
                f"Invalid value for '{param}[{i}]': expected a text, image_file or image_url part.",
                param=f"{param}[{i}]",
            )
    return parts


def add_message(created_at: int, thread_id: str, body: Any, param: str = "") -> dict[str, Any]:
    """A message from a request body (also `messages[i]` of a thread, `additional_messages[i]`)."""
    prefix = f"{param}." if param else ""
    if not isinstance(body, dict):
        raise ApiError(400, f"Invalid '{param}': expected an object.", param=param)
    if validate.required(body, "role", prefix) not in ("user", "assistant"):
        raise ApiError(
            400,
            f"Invalid value: '{body['role']}'. Supported values are: 'user' and 'assistant'.",
            param=f"{prefix}role",
            code="invalid_value",
        )
    if body.get("content") is None:  # "" is checked by _content, in the API's words
        validate.required(body, "content", prefix)
    attachments = body.get("attachments") or []
    if not isinstance(attachments, list):
        raise ApiError(400, f"Invalid '{prefix}attachments': expected an array.")
    return message_object(
        thread_id,
        created_at,
        body["role"],
        content=_content(body["content"], f"{prefix}content"),
        attachments=attachments,
        metadata=validate.metadata(body),
    )


def message_object(thread_id: str, created_at: int, role: str, **fields: Any) -> dict[str, Any]:
    """A thread message as the API shows it: completed and empty, unless `fields` say otherwise."""
    return {
        "id": new_object_id("msg_"),
        "object": "thread.message",
        "created_at": created_at,
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
        "role": role,
        "content": [],
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
        "metadata": {},
        **fields,
    }


def thread_from(
    body: dict[str, Any], created_at: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A thread and its initial messages from a create body, all checked; nothing stored."""
    thread: dict[str, Any] = {
        "id": new_object_id("thread_"),
        "object": "thread",
        "created_at": created_at,
        "tool_resources": body.get("tool_resources") or {},
        "metadata": validate.metadata(body),
    }
    messages = body.get("messages") or []
    if not isinstance(messages, list) or len(messages) > 32:
        raise ApiError(
            400, "Invalid 'messages': expected an array of at most 32 messages.", param="messages"
        )
    made = [
        add_message(created_at, thread["id"], m, f"messages[{i}]") for i, m in enumerate(messages)
    ]
    return thread, made


def create_thread(state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """A thread and its initial messages; everything is checked before anything is stored."""
    thread, made = thread_from(body, state.now())
    state.threads.add(thread)
    for message in made:
        state.messages.add(message)
    return thread


def _message_of(state: SandboxState, request: Request) -> dict[str, Any]:
    thread = get_thread(state, request.params["thread_id"])
    return state.messages.get_in(request.params["message_id"], "thread_id", thread["id"])


def register(router: Router, state: SandboxState, options: SandboxOptions) -> None:
    """Add the threads and messages routes."""

    @router.route("POST", "/v1/threads")
    def create(request: Request) -> dict[str, Any]:
        return create_thread(state, request.json())

    @router.route("GET", "/v1/threads/{thread_id}")
    def get(request: Request) -> dict[str, Any]:
        return get_thread(state, request.params["thread_id"])

    @router.route("POST", "/v1/threads/{thread_id}")
    def modify(request: Request) -> dict[str, Any]:
        thread = get_thread(state, request.params["thread_id"])
        body = request.json()
        metadata = validate.metadata(body, thread["metadata"])
        if "tool_resources" in body:
            thread["tool_resources"] = body["tool_resources"] or {}
        thread["metadata"] = metadata
        return thread

    @router.route("DELETE", "/v1/threads/{thread_id}")
    def delete(request: Request) -> dict[str, Any]:
        thread = state.threads.pop(request.params["thread_id"])
        for kind in (state.messages, state.runs, state.steps):
            for obj in kind.values(lambda o: o["thread_id"] == thread["id"]):
                del kind.items[obj["id"]]
        for run_id, machine in list(state.machines.items()):
            if machine.run["thread_id"] == thread["id"]:
                del state.machines[run_id]
        state.changed.notify_all()
        return {"id": thread["id"], "object": "thread.deleted", "deleted": True}

    @router.route("POST", "/v1/threads/{thread_id}/messages")
    def create_message(request: Request) -> dict[str, Any]:
        thread = get_thread(state, request.params["thread_id"])
        body = request.json()
        if run := active_run(state, thread["id"]):
            raise ApiError(
                400, f"Can't add messages to {thread['id']} while a run {run['id']} is active."
            )
        return state.messages.add(add_message(state.now(), thread["id"], body))

    @router.route("GET", "/v1/threads/{thread_id}/messages")
    def list_messages(request: Request) -> dict[str, Any]:
        thread = get_thread(state, request.params["thread_id"])
        run_id = request.query.get("run_id")
        return page(
            state.messages.values(
                lambda m: m["thread_id"] == thread["id"] and run_id in (None, m["run_id"])
            ),
            request,
        )

    @router.route("GET", "/v1/threads/{thread_id}/messages/{message_id}")
    def get_message(request: Request) -> dict[str, Any]:
        return _message_of(state, request)

    @router.route("POST", "/v1/threads/{thread_id}/messages/{message_id}")
    def modify_message(request: Request) -> dict[str, Any]:
        message = _message_of(state, request)
        message["metadata"] = validate.metadata(request.json(), message["metadata"])
        return message

    @router.route("DELETE", "/v1/threads/{thread_id}/messages/{message_id}")
    def delete_message(request: Request) -> dict[str, Any]:
        message = _message_of(state, request)
        del state.messages.items[message["id"]]
        return {"id": message["id"], "object": "thread.message.deleted", "deleted": True}
