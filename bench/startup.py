"""Start-up cost: `aigw --help` against `python -c "import openai"`, medians side by side.

Run: python -m bench.startup [runs]   (from the repository root; target ratio ≤ 0.35)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench import compile_aigw


def median_seconds(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    compile_aigw()
    # Warm the file cache once for both, then alternate so drift hits both alike.
    help_cmd = [sys.executable, "-m", "aigw", "--help"]
    import_cmd = [sys.executable, "-c", "import openai"]
    median_seconds(help_cmd, 1)
    median_seconds(import_cmd, 1)
    aigw_help = median_seconds(help_cmd, runs)
    sdk_import = median_seconds(import_cmd, runs)
    print(f"aigw --help          median {aigw_help * 1000:7.1f} ms over {runs} runs")
    print(f"python -c 'import openai' median {sdk_import * 1000:7.1f} ms over {runs} runs")
    print(f"ratio {aigw_help / sdk_import:.3f} (target ≤ 0.35)")


if __name__ == "__main__":
    main()
