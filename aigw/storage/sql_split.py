"""Split a SQL script into statements, well enough to point at the line of an error.

Only diagnostics use this: migrations themselves are sent whole and parsed by the server.
"""

from __future__ import annotations

import re

_NOISE = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)


def leading_noise(statement: str) -> int:
    """Length of the whitespace and comments before a statement's first word."""
    match = _NOISE.match(statement)
    return match.end() if match else 0


_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(sql: str) -> list[tuple[int, str]]:
    """(offset, text) of each `;`-terminated statement, skipping quotes, dollar quotes and
    comments. Good enough to locate an error; `BEGIN ATOMIC` bodies are not understood."""
    out: list[tuple[int, str]] = []
    i, start, n = 0, 0, len(sql)
    while i < n:
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        elif sql[i] in "'\"":
            quote, escapes = sql[i], sql[i] == "'" and i > 0 and sql[i - 1] in "eE"
            i += 1
            while i < n:
                if escapes and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == quote:
                    if sql.startswith(quote * 2, i):
                        i += 2
                        continue
                    break
                i += 1
        elif sql[i] == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            match = _DOLLAR.match(sql, i)
            if match:
                end = sql.find(match.group(0), match.end())
                i = n if end < 0 else end + len(match.group(0))
                continue
        elif sql[i] == ";":
            if sql[start:i].strip():
                out.append((start, sql[start:i]))
            start = i + 1
        i += 1
    if sql[start:].strip():
        out.append((start, sql[start:]))
    return out
