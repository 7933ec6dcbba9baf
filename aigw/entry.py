"""The `aigw` program (and `python -m aigw`): the CLI, with the cyclic GC kept out of the way
of its start and of its exit."""

from __future__ import annotations

import gc
import threading

GC_AFTER_S = 1.0


def main() -> None:
    # Start-up makes ~150,000 objects that live as long as the process (modules, classes,
    # psycopg or the SDK); the collector's full passes over them while they are being made
    # cost ~8 ms of a ~200 ms command (measured with `aigw metrics`). Nothing started here
    # leaks cycles that matter within a second; longer commands (logs tail -f, runs --wait,
    # sandbox serve) get the collector back after it.
    gc.disable()
    timer = threading.Timer(GC_AFTER_S, gc.enable)
    timer.daemon = True
    timer.start()
    try:
        from aigw.cli import main as run

        run()
    finally:
        # The interpreter's last act is one more full collection over every object, ~20 ms
        # (measured): the command has closed what it opened by now, and whatever garbage is
        # left goes with the process. Frozen objects are skipped by that collection.
        gc.freeze()
