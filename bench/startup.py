"""Start-up and exit cost of whole commands, medians of interleaved runs side by side.

1. `aigw --help` against `python -c "import openai"` (target ratio ≤ 0.35).
2. What `aigw.entry`'s `gc.freeze()` at exit saves a whole command: the same command run through
   `aigw.cli.main` with and without the freeze (the interpreter's shutdown collections then skip
   every object the command made). Issue 15 keeps the freeze only for a gain of ≥ 10 ms.

Run: python -m bench.startup [runs]   (from the repository root)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import compile_aigw

# aigw's own entry point, with the exit freeze switched by the bench, not by aigw.
_LAUNCH = """
import gc, os, sys
sys.argv[0] = "aigw"
try:
    from aigw.cli import main
    main()
finally:
    if os.environ["BENCH_FREEZE"] == "1":
        gc.freeze()
"""


def medians(commands: list[tuple[list[str], dict[str, str]]], runs: int) -> list[float]:
    """Median wall seconds of each command, run in turn so drift hits them alike."""
    samples: list[list[float]] = [[] for _ in commands]
    for argv, env in commands:  # warm the file cache once
        subprocess.run(argv, env=env, check=True, capture_output=True)
    for _ in range(runs):
        for (argv, env), acc in zip(commands, samples, strict=True):
            started = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            acc.append(time.perf_counter() - started)
    return [statistics.median(acc) for acc in samples]


def exit_freeze_gain(runs: int) -> None:
    from aigw.sandbox import Sandbox

    sandbox = Sandbox().start()
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {
                **os.environ,
                "AIGW_HOME": str(Path(home)),
                "AI_GATEWAY_URL": sandbox.url,
                "GATEWAY_API_KEY": "gk-bench",
                "OPENAI_API_KEY": "sk-bench-000000000000",
            }
            launch = [sys.executable, "-c", _LAUNCH]
            create = ["assistants", "create", "--model", "gpt-4o", "--name", "a"]
            subprocess.run(
                [*launch, *create],
                env={**env, "BENCH_FREEZE": "1"},
                check=True,
                capture_output=True,
            )
            for args in (["--help"], ["assistants", "list", "--no-cache"], ["logs", "list"]):
                frozen, plain = medians(
                    [
                        ([*launch, *args], {**env, "BENCH_FREEZE": "1"}),
                        ([*launch, *args], {**env, "BENCH_FREEZE": "0"}),
                    ],
                    runs,
                )
                print(
                    f"aigw {' '.join(args):28} with exit freeze {frozen * 1000:7.1f} ms, "
                    f"without {plain * 1000:7.1f} ms: gain {(plain - frozen) * 1000:6.1f} ms"
                )
    finally:
        sandbox.stop()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    compile_aigw()
    help_cmd = [sys.executable, "-m", "aigw", "--help"]
    import_cmd = [sys.executable, "-c", "import openai"]
    aigw_help, sdk_import = medians(
        [(help_cmd, dict(os.environ)), (import_cmd, dict(os.environ))], runs
    )
    print(f"aigw --help               median {aigw_help * 1000:7.1f} ms over {runs} runs")
    print(f"python -c 'import openai' median {sdk_import * 1000:7.1f} ms over {runs} runs")
    print(f"ratio {aigw_help / sdk_import:.3f} (target ≤ 0.35)")
    exit_freeze_gain(runs)


if __name__ == "__main__":
    main()
