"""An Assistants message as readable text, for tables and for the remote store's rows."""

from __future__ import annotations

from typing import Any


def message_text(message: Any) -> str:
    """A message's content as readable text: text parts as-is, other parts as a short tag."""
    parts: list[str] = []
    for part in message.content or []:
        kind = getattr(part, "type", None)
        if kind == "text":
            parts.append(part.text.value)
        elif kind == "refusal":
            parts.append(f"[refusal] {part.refusal}")
        elif kind == "image_file":
            parts.append(f"[image_file {part.image_file.file_id}]")
        elif kind == "image_url":
            parts.append(f"[image_url {part.image_url.url}]")
        else:
            parts.append(f"[{kind}]")
    return "\n".join(parts)
