"""What a run answers: the Responder contract and the offline, deterministic EchoResponder.

The run lifecycle (aigw/sandbox/lifecycle.py) asks a Responder once per leg of a run: when the
run is created, and again after tool outputs are submitted. It answers either text (the
assistant message) or function calls (the run goes to `requires_action`). A later issue can
back the same sandbox with a real model API by passing another Responder in SandboxOptions.

EchoResponder's rules, exactly:

1. After tool outputs were submitted, the reply is each call's result in call order,
   `"<function name> returned <output>"`, joined by `"; "`.
2. Otherwise, when the run has function tools and the last user message's text names one or
   more of them as whole words (`\\bname\\b`, case-sensitive), the run requires action: one
   call per named function, in the order of first appearance in the message. Its arguments are
   a JSON object holding each parameter declared in the function's `parameters.properties` that
   the message gives as `name=value` (the value runs to the next whitespace; it is a JSON number,
   `true`, `false` or `null` when it parses as one, a string otherwise). Undeclared or absent
   parameters are left out, so a function without parameters gets `{}`.
3. Otherwise the reply is `"You said: <text of the last user message>"`, or
   `"You said nothing."` when the thread has no user message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: str  # a JSON object, as the API carries it


@dataclass(frozen=True)
class ToolResult:
    name: str
    arguments: str
    output: str


@dataclass(frozen=True)
class Conversation:
    """What the responder sees: the thread's messages (API shape, oldest first) and the run."""

    messages: list[dict[str, Any]]
    instructions: str
    model: str
    tools: list[dict[str, Any]]
    tool_results: list[ToolResult] = field(default_factory=list)

    def last_user_text(self) -> str | None:
        """The text of the newest user message, or None."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return prompt_text(message)
        return None


@dataclass(frozen=True)
class Reply:
    """Either text or function calls (never both)."""

    text: str = ""
    calls: list[FunctionCall] = field(default_factory=list)


class Responder(Protocol):
    def respond(self, conversation: Conversation) -> Reply:
        """The reply to the conversation: text, or function calls."""


def prompt_text(message: dict[str, Any]) -> str:
    """The text parts of an API message, joined by newlines (images are skipped)."""
    parts = [p["text"]["value"] for p in message.get("content", []) if p.get("type") == "text"]
    return "\n".join(parts)


def _argument_value(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if value is None or isinstance(value, bool | int | float) else raw


def _arguments(function: dict[str, Any], text: str) -> str:
    declared = (function.get("parameters") or {}).get("properties") or {}
    given = dict(re.findall(r"(?<!\S)([A-Za-z_][\w-]*)=(\S+)", text))
    return json.dumps({name: _argument_value(given[name]) for name in declared if name in given})


class EchoResponder:
    """Offline and deterministic: see the module docstring for the rules."""

    def respond(self, conversation: Conversation) -> Reply:
        """The tool results, a call the message names, or "You said: …"."""
        if conversation.tool_results:
            return Reply(
                text="; ".join(f"{r.name} returned {r.output}" for r in conversation.tool_results)
            )
        text = conversation.last_user_text()
        if text is None:
            return Reply(text="You said nothing.")
        functions = [t["function"] for t in conversation.tools if t.get("type") == "function"]
        named = []
        for function in functions:
            found = re.search(rf"\b{re.escape(function['name'])}\b", text)
            if found:
                named.append((found.start(), function))
        if named:
            named.sort(key=lambda pair: pair[0])
            return Reply(calls=[FunctionCall(f["name"], _arguments(f, text)) for _, f in named])
        return Reply(text=f"You said: {text}")
