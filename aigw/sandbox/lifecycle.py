"""A run's lifecycle: a timeline of scheduled changes, applied lazily whenever the clock is read.

No background threads: every request touching a thread first calls `advance(now)` on that
thread's runs, which applies each change whose time has come, in order, stamped with its own
time (not the time of the read). Each change also appends the stream event the real API would
send at that moment to `RunMachine.log`, so a streaming response is just a reader of that log.

One leg of a run (from creation, or from a tool-output submission) lasting `d` seconds:

    start        queued                     (thread.run.created/queued)
    start+0.2d   in_progress                (thread.run.in_progress)
    text reply:
      start+0.3d message_creation step and assistant message, in_progress, empty
      …          the reply in up to 8 text deltas, evenly spaced
      start+d    message, step and run completed, with usage
    function calls:
      start+0.6d tool_calls step in_progress, its calls as one step delta
      start+d    requires_action; it expires `expiry` seconds later unless outputs arrive
    failure marker `[sandbox:fail]` (or `[sandbox:fail:<code>]`) in the last user message:
      start+d    failed, last_error {code: server_error (or <code>), message}

A cancel (queued, in_progress or requires_action) drops what was still scheduled, answers
`cancelling` at once and becomes `cancelled` 0.2d later (at most 100 ms); in-progress steps
become cancelled and a half-written message `incomplete` (reason run_cancelled).
"""

from __future__ import annotations

import copy
import functools
import heapq
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aigw.sandbox.http import ApiError
from aigw.sandbox.responder import Conversation, Reply, Responder, ToolResult, prompt_text
from aigw.sandbox.store import new_object_id
from aigw.sandbox.threads import message_object

if TYPE_CHECKING:
    from aigw.sandbox.store import SandboxState

# After one of these events the real API ends the stream with `event: done`.
STREAM_END = frozenset(
    f"thread.run.{s}"
    for s in ("completed", "failed", "cancelled", "expired", "incomplete", "requires_action")
)
FAIL_MARKER = re.compile(r"\[sandbox:fail(?::(server_error|rate_limit_exceeded|invalid_prompt))?\]")
_MAX_DELTAS = 8
_CANCEL_MAX_S = 0.1  # cancelling a long run is still quick, as with the real API


@dataclass(frozen=True)
class Timing:
    run_s: float  # one leg, queued → its outcome
    expiry_s: float  # requires_action → expired


def tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: about four characters a token."""
    return math.ceil(len(text) / 4)


def chunks(text: str, most: int = _MAX_DELTAS) -> list[str]:
    """`text` cut at word starts into at most `most` pieces that join back to it exactly."""
    words = re.findall(r"\s*\S+", text) or [text]
    size = math.ceil(len(words) / most)
    pieces = ["".join(words[i : i + size]) for i in range(0, len(words), size)]
    pieces[-1] += text[len("".join(pieces)) :]  # trailing whitespace, if any
    return pieces


class RunMachine:
    """One run's public object, what it will do next, and the events it has sent so far."""

    def __init__(
        self, state: SandboxState, run: dict[str, Any], timing: Timing, responder: Responder
    ):
        self.state = state
        self.run = run
        self.timing = timing
        self.responder = responder
        self.log: list[tuple[str, dict[str, Any]]] = []
        self._pending: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = 0
        self._step: dict[str, Any] | None = None  # the step now in progress
        self._message: dict[str, Any] | None = None  # the message now being written
        self._step_usage = token_usage(0, 0)  # of the tool_calls step waiting for outputs
        self._usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

    # -- the timeline -------------------------------------------------------------------------
    def _at(self, when: float, change: Callable[[float], None]) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (when, self._seq, change))

    def advance(self, now: float) -> None:
        """Apply every status change due by `now`, in order."""
        while self._pending and self._pending[0][0] <= now:
            when, _, change = heapq.heappop(self._pending)
            change(when)

    def next_change(self) -> float | None:
        """When the next status change is due; None when the run waits or has stopped."""
        return self._pending[0][0] if self._pending else None

    def _emit(self, event: str, obj: dict[str, Any]) -> None:
        self.log.append((event, copy.deepcopy(obj)))

    # -- legs ---------------------------------------------------------------------------------
    def start(self, at: float, thread: dict[str, Any] | None = None) -> None:
        """The run was just created (after `thread`, when thread-and-run created one)."""
        if thread is not None:
            self._emit("thread.created", thread)
        self._emit("thread.run.created", self.run)
        self._leg(at, [])

    def _leg(self, at: float, results: list[ToolResult]) -> None:
        d = self.timing.run_s
        run = self.run
        run.update(status="queued", expires_at=int(at + d + self.timing.expiry_s))
        self._emit("thread.run.queued", run)
        messages = self.state.messages.values(lambda m: m["thread_id"] == run["thread_id"])
        conversation = Conversation(
            messages=messages,
            instructions=run["instructions"],
            model=run["model"],
            tools=run["tools"],
            tool_results=results,
        )
        prompt = tokens(run["instructions"]) + sum(tokens(prompt_text(m)) for m in messages)
        prompt += sum(tokens(r.output) for r in results)
        self._at(at + 0.2 * d, self._in_progress)
        failure = FAIL_MARKER.search(conversation.last_user_text() or "")
        if failure:
            self._at(at + d, lambda t: self._fail(t, failure.group(1) or "server_error"))
            return
        reply = self.responder.respond(conversation)
        if reply.calls:
            self._at(at + 0.6 * d, lambda t: self._tool_step(t, reply, prompt))
            self._at(at + d, self._requires_action)
        else:
            self._at(at + 0.3 * d, self._begin_message)
            pieces = chunks(reply.text)
            for i, piece in enumerate(pieces):
                when = at + 0.3 * d + 0.7 * d * (i + 1) / (len(pieces) + 1)
                self._at(when, functools.partial(self._delta, piece))
            self._at(at + d, lambda t: self._complete(t, prompt, tokens(reply.text)))

    def _in_progress(self, at: float) -> None:
        self.run.update(status="in_progress", started_at=int(at))
        self._emit("thread.run.in_progress", self.run)

    def _new_step(self, at: float, details: dict[str, Any]) -> dict[str, Any]:
        step = step_object(self.run, details, at)
        self._step = self.state.steps.add(step)
        self._emit("thread.run.step.created", step)
        self._emit("thread.run.step.in_progress", step)
        return step

    def _finish_step(self, at: float, usage: dict[str, int]) -> None:
        assert self._step is not None
        self._step.update(status="completed", completed_at=int(at), usage=usage)
        self._emit("thread.run.step.completed", self._step)
        self._step = None

    def _tool_step(self, at: float, reply: Reply, prompt: int) -> None:
        step = self._new_step(at, {"type": "tool_calls", "tool_calls": []})
        calls = [
            {
                "id": new_object_id("call_"),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments, "output": None},
            }
            for c in reply.calls
        ]
        step["step_details"]["tool_calls"] = calls
        delta = [{"index": i, **c} for i, c in enumerate(calls)]
        self._emit(
            "thread.run.step.delta",
            {
                "id": step["id"],
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": delta}},
            },
        )
        completion = sum(tokens(c.name + c.arguments) for c in reply.calls)
        self._add_usage(prompt, completion)
        self._step_usage = token_usage(prompt, completion)  # reported once the outputs arrive

    def _requires_action(self, at: float) -> None:
        assert self._step is not None
        self.run.update(
            status="requires_action",
            required_action=required_action(self._step["step_details"]["tool_calls"]),
            expires_at=int(at + self.timing.expiry_s),
        )
        self._emit("thread.run.requires_action", self.run)
        self._at(at + self.timing.expiry_s, self._expire)

    def _expire(self, at: float) -> None:
        if self._step is not None:
            self._step.update(status="expired", expired_at=int(at))
            self._emit("thread.run.step.expired", self._step)
            self._step = None
        self.run.update(status="expired", required_action=None)
        self._emit("thread.run.expired", self.run)

    def _begin_message(self, at: float) -> None:
        message = assistant_message(self.run, at)
        self._new_step(
            at, {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
        )
        self._message = self.state.messages.add(message)
        self._emit("thread.message.created", message)
        self._emit("thread.message.in_progress", message)

    def _delta(self, piece: str, at: float) -> None:
        assert self._message is not None
        self.log.append(("thread.message.delta", append_text(self._message, piece)))

    def _complete(self, at: float, prompt: int, completion: int) -> None:
        assert self._message is not None
        self._message.update(status="completed", completed_at=int(at))
        self._emit("thread.message.completed", self._message)
        self._message = None
        self._finish_step(at, token_usage(prompt, completion))
        self._add_usage(prompt, completion)
        self.run.update(
            status="completed", completed_at=int(at), expires_at=None, usage=dict(self._usage)
        )
        self._emit("thread.run.completed", self.run)

    def _fail(self, at: float, code: str) -> None:
        message = f"Sandbox: scripted failure ({code}) requested by the last user message."
        self.run.update(
            status="failed",
            failed_at=int(at),
            expires_at=None,
            last_error={"code": code, "message": message},
        )
        self._emit("thread.run.failed", self.run)

    def _add_usage(self, prompt: int, completion: int) -> None:
        for key, value in token_usage(prompt, completion).items():
            self._usage[key] += value

    # -- what clients do ----------------------------------------------------------------------
    def cancel(self, at: float) -> None:
        """Start cancelling the run at `at`; 400 when it has already stopped."""
        status = self.run["status"]
        if status not in ("queued", "in_progress", "requires_action"):
            raise ApiError(400, f"Cannot cancel run with status '{status}'.")
        self._pending.clear()
        self.run.update(status="cancelling")
        self._emit("thread.run.cancelling", self.run)
        self._at(at + min(0.2 * self.timing.run_s, _CANCEL_MAX_S), self._cancelled)

    def _cancelled(self, at: float) -> None:
        if self._step is not None:
            self._step.update(status="cancelled", cancelled_at=int(at))
            self._emit("thread.run.step.cancelled", self._step)
            self._step = None
        if self._message is not None:
            self._message.update(
                status="incomplete",
                incomplete_at=int(at),
                incomplete_details={"reason": "run_cancelled"},
            )
            self._emit("thread.message.incomplete", self._message)
            self._message = None
        self.run.update(
            status="cancelled", cancelled_at=int(at), expires_at=None, required_action=None
        )
        self._emit("thread.run.cancelled", self.run)

    def submit(self, at: float, outputs: list[dict[str, Any]]) -> None:
        """Tool outputs for every pending call; the run goes back to queued."""
        status = self.run["status"]
        if status != "requires_action":
            raise ApiError(400, f'Runs in status "{status}" do not accept tool outputs.')
        assert self._step is not None
        calls = self._step["step_details"]["tool_calls"]
        record_outputs(calls, outputs)
        results = []
        for call in calls:
            fn = call["function"]
            results.append(ToolResult(fn["name"], fn["arguments"], fn["output"]))
        self._pending.clear()  # the expiry
        self._finish_step(at, self._step_usage)
        self.run.update(required_action=None)
        self._leg(at, results)


def step_object(run: dict[str, Any], details: dict[str, Any], at: float) -> dict[str, Any]:
    """A run step in progress, of the type `details` says."""
    return {
        "id": new_object_id("step_"),
        "object": "thread.run.step",
        "created_at": int(at),
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "type": details["type"],
        "status": "in_progress",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": {},
        "usage": None,
    }


def assistant_message(run: dict[str, Any], at: float) -> dict[str, Any]:
    """The run's reply message, in progress and still empty."""
    return message_object(
        run["thread_id"],
        int(at),
        "assistant",
        status="in_progress",
        assistant_id=run["assistant_id"],
        run_id=run["id"],
    )


def append_text(message: dict[str, Any], piece: str) -> dict[str, Any]:
    """Add `piece` to the reply's text; the `thread.message.delta` event that says so."""
    content = message["content"]
    if content:
        content[0]["text"]["value"] += piece
    else:
        content.append({"type": "text", "text": {"value": piece, "annotations": []}})
    part = {"index": 0, "type": "text", "text": {"value": piece, "annotations": []}}
    return {"id": message["id"], "object": "thread.message.delta", "delta": {"content": [part]}}


def required_action(step_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's `required_action` for the calls of its tool_calls step (outputs left out)."""
    calls = [
        {
            "id": c["id"],
            "type": "function",
            "function": {k: c["function"][k] for k in ("name", "arguments")},
        }
        for c in step_calls
    ]
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}


def token_usage(prompt: int, completion: int) -> dict[str, int]:
    """A run's or step's usage object from prompt and completion tokens."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def record_outputs(calls: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> None:
    """Each output into its call (a tool_calls step's); 400 unless every call has one."""
    expected = [c["id"] for c in calls]
    given = [o.get("tool_call_id") for o in outputs]
    if sorted(map(str, given)) != sorted(expected):
        raise ApiError(
            400,
            f"Expected tool outputs for call_ids {expected}, got {given}",
            param="tool_outputs",
        )
    by_id = {o["tool_call_id"]: o.get("output", "") for o in outputs}
    for call in calls:
        call["function"]["output"] = by_id[call["id"]]


def outputs_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`tool_outputs` checked for shape: objects with a string `tool_call_id` and `output`."""
    outputs = body.get("tool_outputs")
    if not isinstance(outputs, list):
        raise ApiError(
            400,
            "Missing required parameter: 'tool_outputs'.",
            param="tool_outputs",
            code="missing_required_parameter",
        )
    for i, item in enumerate(outputs):
        if not isinstance(item, dict) or not isinstance(item.get("tool_call_id"), str):
            raise ApiError(
                400,
                f"Missing required parameter: 'tool_outputs[{i}].tool_call_id'.",
                param=f"tool_outputs[{i}].tool_call_id",
            )
        if not isinstance(item.get("output", ""), str):
            raise ApiError(
                400,
                f"Invalid type for 'tool_outputs[{i}].output': expected a string.",
                param=f"tool_outputs[{i}].output",
                code="invalid_type",
            )
    return outputs
