"""One leg of a run made through the model: from `queued` to requires_action or an end.

A leg sends one Chat Completions request (chat_request) and turns what comes back into the
run's objects and stream events, in the order the sandbox's lifecycle (the reference) sends
them:

    thread.run.queued, thread.run.in_progress,
    text:  step created/in_progress (message_creation), message created/in_progress,
           message.delta per piece, message completed, step completed, run completed
    calls: step created/in_progress (tool_calls), step.delta, run requires_action
    error: (step failed, message incomplete), run failed with last_error

Each state change is written to the store before its event is sent, guarded by the run's
status there, so a cancel from another gateway instance wins over a leg still running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from aigw.bridge.feed import RunFeed
from aigw.bridge.model import CallPiece, ChatModel, ModelError
from aigw.bridge.store import BridgeStore, Expect, Kind
from aigw.sandbox.lifecycle import (
    append_text,
    assistant_message,
    required_action,
    step_object,
    token_usage,
    tokens,
)
from aigw.sandbox.responder import prompt_text


@dataclass(frozen=True)
class ModelCall:
    """What the log records of one request to the model (a row like the gateway's others)."""

    endpoint: str
    status_code: int | None
    latency_ms: int
    model: str
    thread_id: str
    run_id: str
    assistant_id: str
    usage: dict[str, int] | None
    error: str | None


class RunInterrupted(Exception):
    """The run was changed elsewhere (cancelled, expired) while this leg ran."""


def chat_content(message: dict[str, Any]) -> str | list[dict[str, Any]]:
    """A thread message's content for chat: its text, and a user's image URLs as image parts
    (Chat Completions takes images from the user only)."""
    text = prompt_text(message)
    if message["role"] != "user":
        return text
    images = [p["image_url"] for p in message.get("content", []) if p.get("type") == "image_url"]
    if not images:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return parts + [{"type": "image_url", "image_url": image} for image in images]


def truncated(run: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The thread's messages the run's truncation_strategy keeps.

    `last_messages: N` keeps the N most recent. Under `max_prompt_tokens` (either type),
    messages in the middle go, oldest first, until the estimate (four characters a token, the
    instructions included) fits; the first and the last message always stay. `auto` alone
    sends the whole thread: the bridge does not know the model's window.
    """
    strategy = run.get("truncation_strategy") or {}
    if strategy.get("type") == "last_messages" and strategy.get("last_messages"):
        messages = messages[-strategy["last_messages"] :]
    budget = run.get("max_prompt_tokens")
    if not budget or len(messages) <= 2:
        return messages
    sizes = [tokens(prompt_text(m)) for m in messages]
    total = tokens(run["instructions"] or "") + sum(sizes)
    drop = 1  # messages[1:drop] go
    while total > budget and drop < len(messages) - 1:
        total -= sizes[drop]
        drop += 1
    return messages[:1] + messages[drop:]


def chat_request(
    run: dict[str, Any],
    messages: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    *,
    stream: bool,
) -> dict[str, Any]:
    """The Chat Completions request of the run's next leg.

    The thread's messages from before the run, then what the run itself did so far, step by
    step: its tool calls (an assistant message with `tool_calls`, then one `tool` message per
    output) and the replies it wrote.
    """
    chat: list[dict[str, Any]] = []
    if run["instructions"]:
        chat.append({"role": "system", "content": run["instructions"]})
    thread = [m for m in messages if m.get("run_id") != run["id"]]
    for message in truncated(run, thread):
        chat.append({"role": message["role"], "content": chat_content(message)})
    replies = {m["id"]: m for m in messages if m.get("run_id") == run["id"]}
    for step in steps:
        details = step["step_details"]
        if details["type"] == "tool_calls":
            calls = [c for c in details["tool_calls"] if c["function"]["output"] is not None]
            if not calls:
                continue
            chat.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {
                                "name": c["function"]["name"],
                                "arguments": c["function"]["arguments"],
                            },
                        }
                        for c in calls
                    ],
                }
            )
            for c in calls:
                chat.append(
                    {"role": "tool", "tool_call_id": c["id"], "content": c["function"]["output"]}
                )
        elif (reply := replies.get(details["message_creation"]["message_id"])) is not None:
            chat.append({"role": "assistant", "content": prompt_text(reply)})
    body: dict[str, Any] = {"model": run["model"], "messages": chat}
    functions = [
        {"type": "function", "function": t["function"]}
        for t in run["tools"]
        if t["type"] == "function"
    ]
    if functions:
        body["tools"] = functions
        body["parallel_tool_calls"] = run["parallel_tool_calls"]
        if run["tool_choice"] not in (None, "auto"):
            body["tool_choice"] = run["tool_choice"]
    for name in ("temperature", "top_p"):
        if run.get(name) is not None:
            body[name] = run[name]
    if run.get("max_completion_tokens"):
        body["max_completion_tokens"] = run["max_completion_tokens"]
    if isinstance(run.get("response_format"), dict):
        body["response_format"] = run["response_format"]
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def sum_usage(usages: list[dict[str, int] | None]) -> dict[str, int] | None:
    counted = [u for u in usages if u]
    if not counted:
        return None
    return token_usage(
        sum(u["prompt_tokens"] for u in counted), sum(u["completion_tokens"] for u in counted)
    )


@dataclass(eq=False)
class RunLeg:
    """Drives one leg; `run` is already stored as queued."""

    store: BridgeStore
    model: ChatModel
    run: dict[str, Any]
    feed: RunFeed
    _: KW_ONLY
    stream: bool
    clock: Callable[[], float]
    expiry_s: float
    on_call: Callable[[ModelCall], None]
    step: dict[str, Any] | None = field(default=None, init=False)
    message: dict[str, Any] | None = field(default=None, init=False)
    # the usage of the steps of earlier legs
    earlier_usage: list[dict[str, int] | None] = field(default_factory=list, init=False)

    async def save(self, *objects: tuple[Kind, dict[str, Any]], expect: tuple[str, ...]) -> None:
        if not await self.store.write(
            [*objects, ("run", self.run)], Expect(self.run["id"], expect)
        ):
            raise RunInterrupted(self.run["id"])

    async def go(self) -> None:
        run = self.run
        run.update(status="in_progress", started_at=int(self.clock()))
        await self.save(expect=("queued",))
        self.feed.emit("thread.run.in_progress", run)
        messages = await self.store.objects("message", thread_id=run["thread_id"])
        steps = await self.store.objects("step", run_id=run["id"])
        self.earlier_usage = [step["usage"] for step in steps]
        request = chat_request(run, messages, steps, stream=self.stream)
        calls: dict[int, dict[str, str]] = {}
        usage: dict[str, int] | None = None
        started = time.perf_counter()
        status: int | None = 200
        error: str | None = None
        try:
            async for piece in self.model.complete(request):
                if piece.text:
                    await self.text(piece.text)
                for call in piece.calls:
                    gather(calls, call)
                usage = piece.usage or usage
        except ModelError as failure:
            status, error = failure.status, failure.message
            raise
        finally:
            self.on_call(
                ModelCall(
                    endpoint="/chat/completions",
                    status_code=status,
                    latency_ms=round((time.perf_counter() - started) * 1000),
                    model=run["model"],
                    thread_id=run["thread_id"],
                    run_id=run["id"],
                    assistant_id=run["assistant_id"],
                    usage=usage,
                    error=error,
                )
            )
        if calls:
            await self.requires_action([calls[i] for i in sorted(calls)], usage)
        else:
            await self.complete(usage)

    async def text(self, piece: str) -> None:
        if self.message is None:
            at = self.clock()
            message = assistant_message(self.run, at)
            step = step_object(
                self.run,
                {"type": "message_creation", "message_creation": {"message_id": message["id"]}},
                at,
            )
            await self.save(("step", step), ("message", message), expect=("in_progress",))
            self.step, self.message = step, message  # stored: a cancel now ends them too
            self.feed.emit("thread.run.step.created", step)
            self.feed.emit("thread.run.step.in_progress", step)
            self.feed.emit("thread.message.created", message)
            self.feed.emit("thread.message.in_progress", message)
        self.feed.emit("thread.message.delta", append_text(self.message, piece))

    async def requires_action(
        self, calls: list[dict[str, str]], usage: dict[str, int] | None
    ) -> None:
        at = self.clock()
        tool_calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"], "output": None},
            }
            for c in calls
        ]
        step = step_object(self.run, {"type": "tool_calls", "tool_calls": tool_calls}, at)
        step["usage"] = usage  # the leg's; the step completes when the outputs arrive
        self.run.update(
            status="requires_action",
            required_action=required_action(tool_calls),
            expires_at=int(at + self.expiry_s),
        )
        await self.save(("step", step), expect=("in_progress",))
        self.step = step
        self.feed.emit("thread.run.step.created", step)
        self.feed.emit("thread.run.step.in_progress", step)
        delta = [{"index": i, **c} for i, c in enumerate(tool_calls)]
        self.feed.emit(
            "thread.run.step.delta",
            {
                "id": step["id"],
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": delta}},
            },
        )
        self.feed.emit("thread.run.requires_action", self.run)

    async def complete(self, usage: dict[str, int] | None) -> None:
        if self.message is None:  # an empty reply is still a message
            await self.text("")
            assert self.message is not None
            self.message["content"] = []
        at = int(self.clock())
        assert self.step is not None
        self.message.update(status="completed", completed_at=at)
        self.step.update(status="completed", completed_at=at, usage=usage)
        total = sum_usage([*self.earlier_usage, usage])
        self.run.update(status="completed", completed_at=at, expires_at=None, usage=total)
        await self.save(("message", self.message), ("step", self.step), expect=("in_progress",))
        self.feed.emit("thread.message.completed", self.message)
        self.feed.emit("thread.run.step.completed", self.step)
        self.feed.emit("thread.run.completed", self.run)

    async def fail(
        self, code: str, text: str, *, expect: tuple[str, ...] = ("queued", "in_progress")
    ) -> None:
        """End the run as failed with `last_error` {code, message}, and what it was writing."""
        error = {"code": code, "message": text}
        await self._end_as("failed", expect, step_fields={"last_error": error}, last_error=error)

    async def cancelled(self) -> None:
        """The leg was stopped by a cancel: what it was writing ends with the run."""
        await self._end_as("cancelled", ("cancelling",), required_action=None)

    async def _end_as(
        self,
        status: str,
        expect: tuple[str, ...],
        *,
        step_fields: dict[str, Any] | None = None,
        **run_fields: Any,
    ) -> None:
        """End the run as `status` (failed, cancelled), and the step and message it was still
        writing with it: the step as `status`, the message as incomplete."""
        at = int(self.clock())
        ended_at = {f"{status}_at": at}
        step, message = self.step, self.message
        objects: list[tuple[Kind, dict[str, Any]]] = []
        if step is not None and step["status"] == "in_progress":
            step.update(status=status, **ended_at, **(step_fields or {}))
            objects.append(("step", step))
        if message is not None and message["status"] == "in_progress":
            reason = {"reason": f"run_{status}"}
            message.update(status="incomplete", incomplete_at=at, incomplete_details=reason)
            objects.append(("message", message))
        self.run.update(status=status, **ended_at, expires_at=None, **run_fields)
        await self.save(*objects, expect=expect)
        if step is not None and ("step", step) in objects:
            self.feed.emit(f"thread.run.step.{status}", step)
        if message is not None and ("message", message) in objects:
            self.feed.emit("thread.message.incomplete", message)
        self.feed.emit(f"thread.run.{status}", self.run)


def gather(calls: dict[int, dict[str, str]], piece: CallPiece) -> None:
    """Put a streamed tool call together from its pieces."""
    call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
    if piece.id:
        call["id"] = piece.id
    if piece.name:
        call["name"] += piece.name
    call["arguments"] += piece.arguments
