"""The `aigw` program (and `python -m aigw`): the CLI, with the interpreter's exit collection
skipped (bench/startup.py measures what that saves a whole command)."""

from __future__ import annotations

import gc


def main() -> None:
    try:
        from aigw.cli import main as run

        run()
    finally:
        # The interpreter's last act is a full collection over every object the command made;
        # by now the command has closed what it opened, and what is left goes with the process.
        # Frozen objects are skipped by that collection.
        gc.freeze()
