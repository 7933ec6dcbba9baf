"""/v1/threads/{id}/runs, their steps, cancel, submit_tool_outputs, /v1/threads/runs; SSE.

The lifecycle itself lives in aigw/sandbox/lifecycle.py; this module turns requests into
RunMachines and answers with run objects (carrying `openai-poll-after-ms`) or event streams.

Per-run overrides, read from the run's `metadata` (so any client can set them):
`sandbox_run_ms` (how long one leg of this run takes, ms) and `sandbox_expiry_s` (how long
it may wait in requires_action before it expires, seconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aigw.sandbox import validate
from aigw.sandbox.http import ApiError, EventStream, Request, Response, Router
from aigw.sandbox.lifecycle import STREAM_END, RunMachine, Timing, outputs_of
from aigw.sandbox.store import SandboxState, new_object_id, page
from aigw.sandbox.threads import (
    active_run,
    add_message,
    advance_thread,
    create_thread,
    get_thread,
)

if TYPE_CHECKING:
    from aigw.sandbox.server import SandboxOptions

_TICK_S = 0.05  # a stream re-reads the clock at least this often (an injected clock may jump)


def _override(metadata: dict[str, str], key: str, default: float) -> float:
    if key not in metadata:
        return default
    try:
        value = float(metadata[key])
    except ValueError:
        value = -1.0
    if value < 0:
        raise ApiError(
            400,
            f"Invalid 'metadata.{key}': expected a non-negative number.",
            param=f"metadata.{key}",
        )
    return value


def run_from(
    body: dict[str, Any], assistant: dict[str, Any], thread_id: str, created_at: int
) -> dict[str, Any]:
    """A queued run of `assistant` from a create body, all checked; nothing stored."""
    instructions = validate.string(body, "instructions", 256_000)
    if instructions is None:
        instructions = assistant["instructions"] or ""
    if extra := validate.string(body, "additional_instructions", 256_000):
        instructions = f"{instructions}\n\n{extra}" if instructions else extra
    temperature = validate.number(body, "temperature", 0, 2)
    top_p = validate.number(body, "top_p", 0, 1)
    tools = validate.tools(body, assistant["tools"])
    if len(tools) > 20:
        raise ApiError(400, "Invalid 'tools': at most 20 tools on a run.", param="tools")
    metadata = validate.metadata(body)
    return {
        "id": new_object_id("run_"),
        "object": "thread.run",
        "created_at": created_at,
        "thread_id": thread_id,
        "assistant_id": assistant["id"],
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": body.get("model") or assistant["model"],
        "instructions": instructions,
        "tools": tools,
        "metadata": metadata,
        "usage": None,
        "temperature": assistant.get("temperature") if temperature is None else temperature,
        "top_p": assistant.get("top_p") if top_p is None else top_p,
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "max_completion_tokens": body.get("max_completion_tokens"),
        "truncation_strategy": body.get("truncation_strategy")
        or {"type": "auto", "last_messages": None},
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "response_format": body.get("response_format")
        or assistant.get("response_format")
        or "auto",
    }


def additional_messages(
    body: dict[str, Any], thread_id: str, created_at: int
) -> list[dict[str, Any]]:
    """A run's `additional_messages`, checked, as messages of the thread; nothing stored."""
    extra = body.get("additional_messages") or []
    if not isinstance(extra, list):
        raise ApiError(400, "Invalid 'additional_messages': expected an array.")
    return [
        add_message(created_at, thread_id, m, f"additional_messages[{i}]")
        for i, m in enumerate(extra)
    ]


def follow(state: SandboxState, machine: RunMachine, cursor: int) -> Iterator[tuple[str, Any]]:
    """The run's events from `cursor` on, each sent when the lifecycle reaches it, then done."""
    thread_id = machine.run["thread_id"]
    while True:
        with state.changed:
            if thread_id not in state.threads.items:  # deleted under the stream
                events: list[tuple[str, Any]] = [("done", "[DONE]")]
            else:
                advance_thread(state, thread_id)
                events = machine.log[cursor:]
                cursor = len(machine.log)
        for name, data in events:
            yield name, data
            if name in STREAM_END or name == "done":
                if name != "done":
                    yield "done", "[DONE]"
                return
        with state.changed:
            upcoming = machine.next_change()
            wait = _TICK_S if upcoming is None else upcoming - state.clock()
            if wait > 0:
                state.changed.wait(min(wait, _TICK_S))


def register(router: Router, state: SandboxState, options: SandboxOptions) -> None:
    """Add the runs and steps routes."""
    poll_header = {"openai-poll-after-ms": str(options.poll_after_ms)}

    def answer(machine: RunMachine, body: dict[str, Any], cursor: int) -> Response | EventStream:
        if body.get("stream"):
            return EventStream(
                follow(state, machine, cursor), again=lambda: follow(state, machine, cursor)
            )
        return Response(200, machine.run, dict(poll_header))

    def new_run(body: dict[str, Any], thread_id: str) -> tuple[dict[str, Any], Timing]:
        """A queued run from a create body, and its timing; checks everything, stores nothing."""
        assistant = state.assistants.get(validate.required(body, "assistant_id"))
        run = run_from(body, assistant, thread_id, state.now())
        timing = Timing(
            run_s=_override(run["metadata"], "sandbox_run_ms", options.run_duration_ms) / 1000,
            expiry_s=_override(
                run["metadata"], "sandbox_expiry_s", options.requires_action_expiry_s
            ),
        )
        return run, timing

    def launch(
        run: dict[str, Any], timing: Timing, thread: dict[str, Any] | None = None
    ) -> RunMachine:
        machine = RunMachine(state, state.runs.add(run), timing, options.responder)
        state.machines[run["id"]] = machine
        machine.start(state.clock(), thread)
        return machine

    def run_of(request: Request) -> dict[str, Any]:
        thread = get_thread(state, request.params["thread_id"])
        return state.runs.get_in(request.params["run_id"], "thread_id", thread["id"])

    @router.route("POST", "/v1/threads/{thread_id}/runs")
    def create(request: Request) -> Response | EventStream:
        body = request.json()
        thread = get_thread(state, request.params["thread_id"])
        run, timing = new_run(body, thread["id"])
        if busy := active_run(state, thread["id"]):
            raise ApiError(400, f"Thread {thread['id']} already has an active run {busy['id']}.")
        for message in additional_messages(body, thread["id"], state.now()):
            state.messages.add(message)
        return answer(launch(run, timing), body, 0)

    @router.route("POST", "/v1/threads/runs")
    def create_thread_and_run(request: Request) -> Response | EventStream:
        body = request.json()
        thread_body = body.get("thread") or {}
        if not isinstance(thread_body, dict):
            raise ApiError(400, "Invalid 'thread': expected an object.", param="thread")
        run, timing = new_run(body, "")
        thread = create_thread(state, thread_body)
        run["thread_id"] = thread["id"]
        return answer(launch(run, timing, thread), body, 0)

    @router.route("GET", "/v1/threads/{thread_id}/runs")
    def list_runs(request: Request) -> dict[str, Any]:
        thread = get_thread(state, request.params["thread_id"])
        return page(state.runs.values(lambda r: r["thread_id"] == thread["id"]), request)

    @router.route("GET", "/v1/threads/{thread_id}/runs/{run_id}")
    def get(request: Request) -> Response:
        return Response(200, run_of(request), dict(poll_header))

    @router.route("POST", "/v1/threads/{thread_id}/runs/{run_id}")
    def modify(request: Request) -> Response:
        run = run_of(request)
        run["metadata"] = validate.metadata(request.json(), run["metadata"])
        return Response(200, run, dict(poll_header))

    @router.route("POST", "/v1/threads/{thread_id}/runs/{run_id}/cancel")
    def cancel(request: Request) -> Response:
        run = run_of(request)
        machine = state.machines.get(run["id"])
        if machine is None:
            raise ApiError(400, f"Cannot cancel run with status '{run['status']}'.")
        machine.cancel(state.clock())
        state.changed.notify_all()
        return Response(200, run, dict(poll_header))

    @router.route("POST", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
    def submit_tool_outputs(request: Request) -> Response | EventStream:
        body = request.json()
        run = run_of(request)
        outputs = outputs_of(body)
        machine = state.machines.get(run["id"])
        if machine is None:
            raise ApiError(400, f'Runs in status "{run["status"]}" do not accept tool outputs.')
        cursor = len(machine.log)
        machine.submit(state.clock(), outputs)
        state.changed.notify_all()
        return answer(machine, body, cursor)

    @router.route("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps")
    def list_steps(request: Request) -> dict[str, Any]:
        run = run_of(request)
        return page(state.steps.values(lambda s: s["run_id"] == run["id"]), request)

    @router.route("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
    def get_step(request: Request) -> dict[str, Any]:
        run = run_of(request)
        return state.steps.get_in(request.params["step_id"], "run_id", run["id"])
