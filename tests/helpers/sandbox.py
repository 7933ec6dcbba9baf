"""Helpers for the sandbox's own tests: the real SDK pointed at a sandbox, a clock tests move."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
from openai import AssistantEventHandler

from aigw.sandbox import Sandbox, SandboxOptions

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


class ManualClock:
    """Time that only moves when the test says so: lifecycles become exact to assert."""

    def __init__(self, start: float = 1_760_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client_for(sandbox: Sandbox) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=sandbox.url, max_retries=0)


@contextmanager
def running(clock: ManualClock | None = None, **options: Any) -> Iterator[Sandbox]:
    """A sandbox of the test's own, on a free port, stopped afterwards."""
    settings = {"run_duration_ms": 40, "poll_after_ms": 10, **options}
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    server = Sandbox(SandboxOptions(**settings), **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def raw_post(sandbox: Sandbox, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """A POST with a body the SDK would never send (bad JSON), over real HTTP."""
    request = urllib.request.Request(
        sandbox.url + path,
        data=body,
        method="POST",
        headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Collector(AssistantEventHandler):
    """The names of a run stream's events and the text of its deltas."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.text = ""

    def on_event(self, event: Any) -> None:
        self.events.append(event.event)

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.text += delta.value or ""


def deduplicated(events: list[str]) -> list[str]:
    """The events with repeated deltas folded into one."""
    return [e for i, e in enumerate(events) if i == 0 or e != events[i - 1]]
