"""How fast does `runs create --wait` notice that a run finished? Prints medians and a ratio.

Against an in-process sandbox whose runs take 2 s, for each of N runs: the lag between the
moment the sandbox completes the run and the moment the waiter returns.

- The completion moment is the sandbox's own schedule: a run's lifecycle is planned when it
  is created (aigw/sandbox/lifecycle.py), and its last scheduled change is `completed`. A
  monitor thread reads that float timestamp from the run's RunMachine (the API object only
  carries whole seconds in `completed_at`).
- aigw: the service behind `aigw runs create --wait` (aigw.services.runs.create_run_and_wait),
  in process, through aigw's own gateway client and transport stack. Two figures: when it
  *noticed* the completion (its progress callback first sees `completed`), and when it
  *returned* (after also fetching the reply, as the command does before printing).
- SDK: `client.beta.threads.runs.create_and_poll(...)` with its default poll interval, which
  is the server's `openai-poll-after-ms` header when present, else 1000 ms. Measured twice:
  the sandbox's default header (50 ms), and a header of 1000 ms (what the SDK falls back to
  when a server sends none).

Run: python -m bench.wait_lag [RUNS]   (from the repository root; default 7 runs per variant)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigw.sandbox import Sandbox

RUN_MS = 2000


class CompletionClock:
    """Records, per run ID, the float time its lifecycle scheduled for completion."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.scheduled: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        state = self.sandbox.state
        while not self._stop.is_set():
            with state.lock:
                for run_id, machine in state.machines.items():
                    if run_id not in self.scheduled and machine._pending:
                        # The leg is planned at creation; its last change is the outcome.
                        self.scheduled[run_id] = max(when for when, _, _ in machine._pending)
            time.sleep(0.001)

    def completion_of(self, run_id: str) -> float:
        return self.scheduled[run_id]

    def stop(self) -> None:
        self._stop.set()


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def new_thread(client: Any, assistant_id: str) -> str:
    return str(client.beta.threads.create(messages=[{"role": "user", "content": "ping"}]).id)


def measure_aigw(
    sandbox: Sandbox, clock: CompletionClock, durations: list[int]
) -> tuple[list[float], list[float]]:
    from aigw.context import AppContext
    from aigw.services.requests import RunCreate
    from aigw.services.runs import create_run_and_wait

    os.environ.update(
        AI_GATEWAY_URL=sandbox.url,
        GATEWAY_API_KEY="gk-bench",
        OPENAI_API_KEY="sk-bench-000000000000000000",
        AIGW_HOME=tempfile.mkdtemp(prefix="aigw-bench-"),
    )
    app = AppContext()
    assistant_id = app.openai.beta.assistants.create(model="gpt-4o").id
    noticed: list[float] = []
    returned: list[float] = []
    for ms in durations:
        thread_id = new_thread(app.openai, assistant_id)
        seen: dict[str, float] = {}

        def progress(run: Any, elapsed: float, seen: dict[str, float] = seen) -> None:
            if run is not None and run.status == "completed" and "at" not in seen:
                seen["at"] = time.time()

        outcome = create_run_and_wait(
            app,
            thread_id,
            RunCreate(assistant_id=assistant_id, metadata={"sandbox_run_ms": str(ms)}),
            timeout=60,
            on_progress=progress,
        )
        done = time.time()
        assert outcome.run.status == "completed" and outcome.messages, outcome.run.status
        completed = clock.completion_of(outcome.run.id)
        noticed.append(seen["at"] - completed)
        returned.append(done - completed)
    app.close()
    return noticed, returned


def measure_sdk(sandbox: Sandbox, clock: CompletionClock, durations: list[int]) -> list[float]:
    import openai

    client = openai.OpenAI(
        base_url=sandbox.url, api_key="sk-bench-000000000000000000", max_retries=0
    )
    assistant_id = client.beta.assistants.create(model="gpt-4o").id
    lags: list[float] = []
    for ms in durations:
        thread_id = new_thread(client, assistant_id)
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant_id, metadata={"sandbox_run_ms": str(ms)}
        )
        done = time.time()
        assert run.status == "completed", run.status
        lags.append(done - clock.completion_of(run.id))
    client.close()
    return lags


def with_sandbox(poll_after_ms: int, work: Callable[[Sandbox, CompletionClock], Any]) -> Any:
    from aigw.sandbox import Sandbox, SandboxOptions

    sandbox = Sandbox(SandboxOptions(run_duration_ms=RUN_MS, poll_after_ms=poll_after_ms))
    sandbox.start()
    clock = CompletionClock(sandbox)
    try:
        return work(sandbox, clock)
    finally:
        clock.stop()
        sandbox.stop()


def scenario(title: str, durations: list[int]) -> None:
    print(f"\n{title}: {len(durations)} runs per variant, run lengths (ms) {durations}")
    noticed, returned = with_sandbox(50, lambda s, c: measure_aigw(s, c, durations))
    sdk_50 = with_sandbox(50, lambda s, c: measure_sdk(s, c, durations))
    sdk_1000 = with_sandbox(1000, lambda s, c: measure_sdk(s, c, durations))
    rows = [
        ("aigw --wait (SSE), noticed", noticed),
        ("aigw --wait (SSE), returned with reply", returned),
        ("SDK create_and_poll, poll-after 50 ms", sdk_50),
        ("SDK create_and_poll, poll-after 1000 ms", sdk_1000),
    ]
    for name, lags in rows:
        shown = " ".join(f"{lag * 1000:.1f}" for lag in lags)
        print(f"  {name:42s} median {median_ms(lags):7.1f} ms   [{shown}]")
    aigw = median_ms(returned)
    for label, sdk in (("50 ms", sdk_50), ("1000 ms", sdk_1000)):
        ratio = aigw / median_ms(sdk)
        verdict = "meets" if ratio <= 0.2 else "misses"
        print(
            f"  ratio aigw(returned) / SDK(poll-after {label}) = {ratio:.3f}  "
            f"({verdict} the 0.2 target)"
        )


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(
        "lag = when the waiter returned - the sandbox's scheduled completion time; "
        "everything in one process (sandbox on a thread, loopback HTTP)"
    )
    scenario(
        "runs of exactly 2 s (the SandboxOptions(run_duration_ms=2000) setup)", [RUN_MS] * runs
    )
    # A poller's lag depends on where the completion falls between two polls; runs of exactly
    # 2 s line up with a 50 ms or 1000 ms cadence, so also spread the lengths over one second.
    spread = [RUN_MS + (i * 379) % 1000 for i in range(runs)]
    scenario("runs of 2–3 s (lengths spread so completions fall anywhere between polls)", spread)


if __name__ == "__main__":
    main()
