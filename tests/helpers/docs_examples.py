"""The command examples of README.md and docs/*.md: their ```console blocks, as commands.

The convention is in tests/test_docs_examples.py, which runs them, and in docs/README.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)[ \t]*([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


class Example(NamedTuple):
    page: str
    line: int
    needs_db: bool
    commands: list[str]

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def commands_of(body: str) -> list[str]:
    """The `$ ` lines of a console block, with their `\\` continuations joined."""
    commands: list[str] = []
    continuing = False
    for line in body.splitlines():
        if continuing:
            commands[-1] += "\n" + line
        elif line.startswith("$ "):
            commands.append(line[2:])
        else:
            continue
        continuing = line.endswith("\\")
    return commands


def examples_in(path: Path) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) != "console":
            continue
        line = text.count("\n", 0, match.start()) + 1
        needs_db = "db" in match.group(2).split()
        found.append(
            Example(str(path.relative_to(ROOT)), line, needs_db, commands_of(match.group(3)))
        )
    return found


def all_examples() -> list[Example]:
    return [example for page in PAGES for example in examples_in(page)]
