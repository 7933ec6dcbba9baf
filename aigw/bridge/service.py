"""The Assistants API answered by the gateway: objects in a BridgeStore, runs through a model.

Requests are checked by the sandbox's own builders (aigw/sandbox/), so ids, shapes and error
texts are the sandbox's; what differs is where state lives (a durable store) and what writes
a run's reply (a Chat Completions API, aigw/bridge/legs.py).

Interrupted runs: a run in flight when its gateway died cannot be resumed mid-reply, so it is
failed with `server_error` ("interrupted"): at start for the runs of a store only this process
uses (SQLite), and, with a shared store (Postgres), whenever a run's lease has run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from aigw.bridge.feed import RunFeed
from aigw.bridge.legs import ModelCall, RunInterrupted, RunLeg
from aigw.bridge.model import ChatModel, ModelError
from aigw.bridge.store import (
    ACTIVE,
    IN_FLIGHT,
    BridgeStore,
    Expect,
    Guard,
    IdleThread,
    Kind,
    ThreadBusy,
)
from aigw.sandbox import validate
from aigw.sandbox.assistants import assistant_from, modified
from aigw.sandbox.http import ApiError, Request, not_found
from aigw.sandbox.lifecycle import outputs_of, record_outputs
from aigw.sandbox.runs import additional_messages, run_from
from aigw.sandbox.store import page
from aigw.sandbox.threads import add_message, thread_from

INTERRUPTED = "The run was interrupted: the gateway serving it stopped before it finished."
UNSUPPORTED = ("code_interpreter", "file_search")


def refuse_hosted_tools(tools: list[dict[str, Any]]) -> None:
    for index, tool in enumerate(tools):
        if tool["type"] in UNSUPPORTED:
            raise ApiError(
                400,
                f"The gateway's Assistants bridge does not run '{tool['type']}' tools: only "
                "'function' tools are supported (see docs/bridge.md).",
                param=f"tools[{index}].type",
                code="unsupported_tool",
            )


def refuse_image_files(messages: list[dict[str, Any]], param: str) -> None:
    """`image_file` parts name a file the bridge does not have (it serves no Files API)."""
    for i, message in enumerate(messages):
        for j, part in enumerate(message["content"]):
            if part["type"] == "image_file":
                where = f"{param}[{i}].content[{j}]" if param else f"content[{j}]"
                raise ApiError(
                    400,
                    "The gateway's Assistants bridge serves no files, so an 'image_file' part "
                    "cannot reach the model: give the image as an 'image_url' part (a URL or a "
                    "data: URL) instead (see docs/bridge.md).",
                    param=where,
                    code="unsupported_content",
                )


def check_truncation(run: dict[str, Any]) -> None:
    """The run's truncation_strategy and max_prompt_tokens are ones the bridge can apply."""
    budget = run["max_prompt_tokens"]
    budget_ok = isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1
    if budget is not None and not budget_ok:
        raise ApiError(
            400,
            "Invalid 'max_prompt_tokens': expected an integer of at least 1.",
            param="max_prompt_tokens",
        )
    strategy = run["truncation_strategy"]
    kind = strategy.get("type") if isinstance(strategy, dict) else None
    last = strategy.get("last_messages") if isinstance(strategy, dict) else None
    if kind not in ("auto", "last_messages"):
        raise ApiError(
            400,
            "Invalid 'truncation_strategy.type': expected 'auto' or 'last_messages'.",
            param="truncation_strategy.type",
        )
    count_ok = isinstance(last, int) and not isinstance(last, bool) and last >= 1
    if (kind == "last_messages" and not count_ok) or (last is not None and not count_ok):
        raise ApiError(
            400,
            "Invalid 'truncation_strategy.last_messages': expected an integer of at least 1.",
            param="truncation_strategy.last_messages",
        )


@dataclass(eq=False)
class BridgeService:
    store: BridgeStore
    model: ChatModel
    _: KW_ONLY
    clock: Callable[[], float] = time.time
    expiry_s: float = 600.0
    exclusive_store: bool = True
    drain_s: float = 10.0
    on_call: Callable[[ModelCall], None] = lambda call: None
    # run id → this process's leg and its task
    legs: dict[str, tuple[RunLeg, asyncio.Task[None]]] = field(default_factory=dict, init=False)

    # -- start and stop ------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.open()
        await self.model.open()
        await self.recover(all_in_flight=self.exclusive_store)

    async def drain(self) -> None:
        """Let running legs finish within `drain_s`, then fail the rest as interrupted (their
        streams end with thread.run.failed)."""
        tasks = [task for _, task in self.legs.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.drain_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        await self.drain()  # nothing left after a drain; anything started since goes too
        await self.model.close()
        await self.store.close()

    async def recover(self, *, all_in_flight: bool = False) -> list[str]:
        """Fail the runs whose gateway died (see the module docstring); their ids."""
        failed = []
        for run in await self.store.stale_runs(self.clock(), all_in_flight=all_in_flight):
            if await self._interrupt(run):
                failed.append(run["id"])
        return failed

    async def _interrupt(self, run: dict[str, Any], feed: RunFeed | None = None) -> bool:
        """Fail a run whose leg is gone (its events, if `feed`, sent there); False if it had
        moved on meanwhile."""
        leg = self._leg(run, feed or RunFeed(), stream=False)
        steps = await self.store.objects("step", run_id=run["id"])
        leg.step = next((s for s in steps if s["status"] == "in_progress"), None)
        messages = await self.store.objects("message", thread_id=run["thread_id"])
        leg.message = next(
            (m for m in messages if m.get("run_id") == run["id"] and m["status"] == "in_progress"),
            None,
        )
        try:
            await leg.fail("server_error", INTERRUPTED, expect=IN_FLIGHT)
        except RunInterrupted:
            return False
        return True

    def _leg(self, run: dict[str, Any], feed: RunFeed, *, stream: bool) -> RunLeg:
        return RunLeg(
            self.store,
            self.model,
            dict(run),
            feed,
            stream=stream,
            clock=self.clock,
            expiry_s=self.expiry_s,
            on_call=self.on_call,
        )

    # -- reading -------------------------------------------------------------------------------
    async def get(self, kind: Kind, object_id: str, label: str) -> dict[str, Any]:
        found = await self.store.get(kind, object_id)
        if found is None:
            raise not_found(label, object_id)
        return found

    async def thread(self, thread_id: str) -> dict[str, Any]:
        return await self.get("thread", thread_id, "thread")

    async def in_thread(
        self, kind: Kind, object_id: str, thread_id: str, label: str
    ) -> dict[str, Any]:
        await self.thread(thread_id)
        found = await self.store.get(kind, object_id)
        if found is None or found["thread_id"] != thread_id:
            raise not_found(label, object_id)
        return found

    async def run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        return await self.settled(await self.in_thread("run", run_id, thread_id, "run"))

    async def settled(self, run: dict[str, Any]) -> dict[str, Any]:
        """The run brought up to the clock: requires_action past expires_at is expired, a run
        whose lease ran out on another (dead) instance is failed."""
        now = self.clock()
        if run["status"] == "requires_action" and run["expires_at"] and run["expires_at"] <= now:
            steps = await self.store.objects("step", run_id=run["id"])
            objects: list[tuple[Kind, dict[str, Any]]] = []
            for step in steps:
                if step["status"] == "in_progress":
                    step.update(status="expired", expired_at=int(now))
                    objects.append(("step", step))
            run.update(status="expired", required_action=None)
            objects.append(("run", run))
            await self.store.write(objects, Expect(run["id"], ("requires_action",)))
            return await self.get("run", run["id"], "run")
        if run["status"] in IN_FLIGHT and run["id"] not in self.legs and not self.exclusive_store:
            await self.recover()
            return await self.get("run", run["id"], "run")
        return run

    async def listed(self, kind: Kind, query: Request, **where: str) -> dict[str, Any]:
        """One page of the objects of `kind` (of a thread or run), as `query` asks."""
        return page(await self.store.objects(kind, **where), query)

    # -- assistants ----------------------------------------------------------------------------
    async def list_assistants(self, query: Request) -> dict[str, Any]:
        return await self.listed("assistant", query)

    async def get_assistant(self, assistant_id: str) -> dict[str, Any]:
        return await self.get("assistant", assistant_id, "assistant")

    async def delete_assistant(self, assistant_id: str) -> dict[str, Any]:
        return await self.delete("assistant", assistant_id, "assistant", "assistant.deleted")

    async def create_assistant(self, body: dict[str, Any]) -> dict[str, Any]:
        assistant = assistant_from(body, int(self.clock()))
        refuse_hosted_tools(assistant["tools"])
        await self.store.write([("assistant", assistant)])
        return assistant

    async def modify_assistant(self, assistant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        assistant = modified(await self.get("assistant", assistant_id, "assistant"), body)
        refuse_hosted_tools(assistant["tools"])
        await self.store.write([("assistant", assistant)])
        return assistant

    async def delete(self, kind: Kind, object_id: str, label: str, deleted: str) -> dict[str, Any]:
        if not await self.store.delete(kind, object_id):
            raise not_found(label, object_id)
        return {"id": object_id, "object": deleted, "deleted": True}

    # -- threads and messages ------------------------------------------------------------------
    async def create_thread(self, body: dict[str, Any]) -> dict[str, Any]:
        thread, messages = thread_from(body, int(self.clock()))
        refuse_image_files(messages, "messages")
        await self.store.write([("thread", thread), *(("message", m) for m in messages)])
        return thread

    async def modify_thread(self, thread_id: str, body: dict[str, Any]) -> dict[str, Any]:
        thread = await self.thread(thread_id)
        metadata = validate.metadata(body, thread["metadata"])
        if "tool_resources" in body:
            thread["tool_resources"] = body["tool_resources"] or {}
        thread["metadata"] = metadata
        await self.store.write([("thread", thread)])
        return thread

    async def delete_thread(self, thread_id: str) -> dict[str, Any]:
        """The thread and everything in it; a leg still running on it is stopped."""
        for leg, task in list(self.legs.values()):
            if leg.run["thread_id"] == thread_id:
                task.cancel()
        return await self.delete("thread", thread_id, "thread", "thread.deleted")

    async def list_messages(self, thread_id: str, query: Request) -> dict[str, Any]:
        thread = await self.thread(thread_id)
        messages = await self.store.objects("message", thread_id=thread["id"])
        if (run_id := query.query.get("run_id")) is not None:
            messages = [m for m in messages if m.get("run_id") == run_id]
        return page(messages, query)

    async def get_message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        return await self.in_thread("message", message_id, thread_id, "message")

    async def delete_message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        message = await self.get_message(thread_id, message_id)
        return await self.delete("message", message["id"], "message", "thread.message.deleted")

    async def create_message(self, thread_id: str, body: dict[str, Any]) -> dict[str, Any]:
        await self.thread(thread_id)
        message = add_message(int(self.clock()), thread_id, body)
        refuse_image_files([message], "")
        await self._write_unless_busy(
            thread_id,
            [("message", message)],
            IdleThread(thread_id),
            refusal=lambda run: f"Can't add messages to {thread_id} while a run {run} is active.",
        )
        return message

    async def modify_message(
        self, thread_id: str, message_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        message = await self.in_thread("message", message_id, thread_id, "message")
        message["metadata"] = validate.metadata(body, message["metadata"])
        await self.store.write([("message", message)])
        return message

    async def _write_unless_busy(
        self,
        thread_id: str,
        objects: list[tuple[Kind, dict[str, Any]]],
        guard: Guard = None,
        *,
        refusal: Callable[[str], str],
    ) -> None:
        """Write; when an active run holds the thread, settle it once and write again, or
        refuse with the `refusal` of that run."""
        try:
            await self.store.write(objects, guard)
        except ThreadBusy:
            if not await self._freed(thread_id):
                busy = await self._active_run(thread_id)
                raise ApiError(400, refusal(busy)) from None
            await self.store.write(objects, guard)

    async def _active_run(self, thread_id: str) -> str:
        runs = await self.store.objects("run", thread_id=thread_id)
        return next((r["id"] for r in reversed(runs) if r["status"] in ACTIVE), "?")

    async def _freed(self, thread_id: str) -> bool:
        """Settle the thread's active run (expired? interrupted?); True if that freed it."""
        runs = await self.store.objects("run", thread_id=thread_id)
        active = [r for r in runs if r["status"] in ACTIVE]
        for run in active:
            await self.settled(run)
        statuses = [(await self.get("run", r["id"], "run"))["status"] for r in active]
        return bool(active) and all(status not in ACTIVE for status in statuses)

    # -- runs ----------------------------------------------------------------------------------
    async def _new_run(self, body: dict[str, Any], thread_id: str) -> dict[str, Any]:
        assistant = await self.get(
            "assistant", validate.required(body, "assistant_id"), "assistant"
        )
        run = run_from(body, assistant, thread_id, int(self.clock()))
        refuse_hosted_tools(run["tools"])
        check_truncation(run)
        return run

    async def create_run(
        self, thread_id: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], RunFeed]:
        thread = await self.thread(thread_id)
        run = await self._new_run(body, thread["id"])
        messages = additional_messages(body, thread["id"], int(self.clock()))
        refuse_image_files(messages, "additional_messages")
        objects: list[tuple[Kind, dict[str, Any]]] = [
            ("run", run),
            *(("message", m) for m in messages),
        ]
        await self._write_unless_busy(
            thread_id,
            objects,
            refusal=lambda run: f"Thread {thread_id} already has an active run {run}.",
        )
        return run, self._launch(run, bool(body.get("stream")), first=("thread.run.created",))

    async def create_thread_and_run(self, body: dict[str, Any]) -> tuple[dict[str, Any], RunFeed]:
        thread_body = body.get("thread") or {}
        if not isinstance(thread_body, dict):
            raise ApiError(400, "Invalid 'thread': expected an object.", param="thread")
        run = await self._new_run(body, "")
        thread, messages = thread_from(thread_body, int(self.clock()))
        refuse_image_files(messages, "thread.messages")
        run["thread_id"] = thread["id"]
        for message in messages:
            message["thread_id"] = thread["id"]
        await self.store.write(
            [("thread", thread), *(("message", m) for m in messages), ("run", run)]
        )
        feed = RunFeed()
        feed.emit("thread.created", thread)
        return run, self._launch(run, bool(body.get("stream")), feed, first=("thread.run.created",))

    def _launch(
        self,
        run: dict[str, Any],
        stream: bool,
        feed: RunFeed | None = None,
        *,
        first: tuple[str, ...] = (),
    ) -> RunFeed:
        """Start a leg of `run` (stored as queued) on its own task; its feed."""
        feed = feed or RunFeed()
        for name in first:
            feed.emit(name, run)
        feed.emit("thread.run.queued", run)
        leg = self._leg(run, feed, stream=stream)
        task = asyncio.get_running_loop().create_task(self._drive(leg))
        self.legs[run["id"]] = (leg, task)
        return feed

    async def _drive(self, leg: RunLeg) -> None:
        run_id = leg.run["id"]
        try:
            await leg.go()
        except ModelError as error:
            with contextlib.suppress(RunInterrupted):
                await leg.fail(error.code, error.message)
        except RunInterrupted:
            await self._finish_elsewhere(leg)
        except asyncio.CancelledError:
            # A cancel of this process's leg, or a stop past its deadline.
            stored = await self.store.get("run", run_id)
            if stored is not None and stored["status"] == "cancelling":
                with contextlib.suppress(RunInterrupted):
                    await leg.cancelled()
            elif stored is not None:
                await self._interrupt(stored, leg.feed)
        finally:
            leg.feed.close()
            self.legs.pop(run_id, None)

    async def _finish_elsewhere(self, leg: RunLeg) -> None:
        """The run changed under the leg: a cancel (maybe from another instance) is finished."""
        stored = await self.store.get("run", leg.run["id"])
        if stored is not None and stored["status"] == "cancelling":
            leg.run = stored
            with contextlib.suppress(RunInterrupted):
                await leg.cancelled()

    async def list_runs(self, thread_id: str, query: Request) -> dict[str, Any]:
        thread = await self.thread(thread_id)
        runs = await self.store.objects("run", thread_id=thread["id"])
        return page([await self.settled(run) for run in runs], query)

    async def list_steps(self, thread_id: str, run_id: str, query: Request) -> dict[str, Any]:
        run = await self.run(thread_id, run_id)
        return await self.listed("step", query, run_id=run["id"])

    async def get_step(self, thread_id: str, run_id: str, step_id: str) -> dict[str, Any]:
        run = await self.run(thread_id, run_id)
        step = await self.store.get("step", step_id)
        if step is None or step["run_id"] != run["id"]:
            raise ApiError(404, f"No run step found with id '{step_id}'.")
        return step

    async def modify_run(self, thread_id: str, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        run = await self.run(thread_id, run_id)
        metadata = validate.metadata(body, run["metadata"])
        if run["id"] in self.legs:  # the leg owns the run object: change its copy too
            self.legs[run["id"]][0].run["metadata"] = metadata
        run["metadata"] = metadata
        await self.store.write([("run", run)], Expect(run["id"], (run["status"],)))
        return run

    async def cancel_run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        run = await self.run(thread_id, run_id)
        if run["status"] not in ("queued", "in_progress", "requires_action"):
            raise ApiError(400, f"Cannot cancel run with status '{run['status']}'.")
        previous = run["status"]
        run["status"] = "cancelling"
        if not await self.store.write([("run", run)], Expect(run["id"], (previous,))):
            return await self.cancel_run(thread_id, run_id)  # it moved on meanwhile: look again
        local = self.legs.get(run["id"])
        if local is not None:
            leg, task = local
            leg.run["status"] = "cancelling"
            leg.feed.emit("thread.run.cancelling", run)
            task.cancel()
        elif previous == "requires_action":
            leg = self._leg(run, RunFeed(), stream=False)
            steps = await self.store.objects("step", run_id=run["id"])
            leg.step = next((s for s in steps if s["status"] == "in_progress"), None)
            with contextlib.suppress(RunInterrupted):
                await leg.cancelled()
        return run

    async def submit_tool_outputs(
        self, thread_id: str, run_id: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], RunFeed]:
        run = await self.run(thread_id, run_id)
        outputs = outputs_of(body)
        if run["status"] != "requires_action":
            raise ApiError(400, f'Runs in status "{run["status"]}" do not accept tool outputs.')
        steps = await self.store.objects("step", run_id=run["id"])
        step = next(s for s in steps if s["status"] == "in_progress")
        record_outputs(step["step_details"]["tool_calls"], outputs)
        step.update(status="completed", completed_at=int(self.clock()))
        run.update(status="queued", required_action=None, expires_at=None)
        if not await self.store.write(
            [("step", step), ("run", run)], Expect(run["id"], ("requires_action",))
        ):
            stored = await self.get("run", run["id"], "run")
            raise ApiError(400, f'Runs in status "{stored["status"]}" do not accept tool outputs.')
        feed = RunFeed()
        feed.emit("thread.run.step.completed", step)
        return run, self._launch(run, bool(body.get("stream")), feed)
