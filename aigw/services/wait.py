"""Waiting for a run to stop, within an overall deadline (the SDK's helpers have none).

Two ways to notice a status change, fastest first:
- follow the run's SSE stream (`stream=True` on create / submit_tool_outputs): the server
  tells us the moment the run stops, so the lag is one network hop;
- poll `GET …/runs/{id}`, sleeping as long as the server's `openai-poll-after-ms` asks — for
  `cancel --wait` (the API has no stream for an existing run) and when a stream ends early.

The stream is read on a helper thread and handed over through a queue, so the main thread
never sits in a blocking socket read: the deadline and Ctrl-C are honoured at once, and the
progress callback hears the elapsed time a few times a second.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aigw.durations import format_duration
from aigw.errors import AigwError, ExitCode

if TYPE_CHECKING:
    from aigw.context import AppContext

STOP_STATUSES = frozenset(
    {"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"}
)
FAILED_STATUSES = frozenset({"failed", "cancelled", "expired", "incomplete"})
DEFAULT_POLL_S = 0.5  # when the server sends no openai-poll-after-ms
TICK_S = 0.2  # how often the progress callback hears the elapsed time

# (the latest run object or None before the run exists, seconds since the wait began)
Progress = Callable[[Any | None, float], None]


@dataclass
class RunOutcome:
    """Where a wait ended: the run, and on `completed` the messages it created (oldest first)."""

    run: Any
    messages: list[Any] = field(default_factory=list)
    elapsed: float = 0.0


def _run_commands(thread_id: str, run: Any | None) -> tuple[str, str]:
    if run is None:  # stopped before the first event: `runs list` shows the run's ID
        return f"aigw runs list {thread_id}", f"aigw runs cancel {thread_id} RUN_ID"
    return f"aigw runs get {thread_id} {run.id}", f"aigw runs cancel {thread_id} {run.id}"


class WaitTimeout(AigwError):
    def __init__(self, thread_id: str, run: Any | None, timeout: float):
        check, cancel = _run_commands(thread_id, run)
        where = f"run {run.id} is {run.status}" if run is not None else "the run had not started"
        super().__init__(
            f"stopped waiting after {format_duration(timeout)}: {where}; "
            "it continues on the server",
            code=ExitCode.TIMEOUT,
            hint=f"check it with `{check}`; cancel it with `{cancel}`",
        )


class WaitInterrupted(AigwError):
    def __init__(self, thread_id: str, run: Any | None):
        _, cancel = _run_commands(thread_id, run)
        where = f"run {run.id} ({run.status})" if run is not None else "the run"
        super().__init__(
            f"stopped waiting: {where} continues on the server",
            code=ExitCode.INTERRUPTED,
            hint=f"cancel it with `{cancel}`",
        )


def poll_after(headers: Any) -> float:
    value = headers.get("openai-poll-after-ms")
    try:
        return max(int(value), 0) / 1000 if value is not None else DEFAULT_POLL_S
    except ValueError:
        return DEFAULT_POLL_S


def _pump(stream: Any, events: queue.Queue[tuple[str, Any]]) -> None:
    """Helper thread: run objects from the SSE stream into the queue, then "end" or "error"."""
    try:
        for event in stream:
            name = getattr(event, "event", "")
            if name.startswith("thread.run.") and not name.startswith("thread.run.step."):
                events.put(("run", event.data))
            elif name == "thread.message.completed":
                events.put(("message", event.data))
        events.put(("end", None))
    except BaseException as exc:  # handed to the main thread, which decides
        events.put(("error", exc))


class RunWatch:
    """One wait: the deadline, the latest run seen, and the progress callback."""

    def __init__(
        self,
        app: AppContext,
        thread_id: str,
        *,
        timeout: float | None,
        on_progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.app = app
        self.thread_id = thread_id
        self.timeout = timeout
        self.on_progress = on_progress
        self.clock = clock
        self.started = clock()
        self.run: Any | None = None
        # Messages the stream delivered whole (`thread.message.completed`), by ID; when the
        # run's own stream saw it complete, they are its reply and no list request is needed.
        self.streamed_messages: dict[str, Any] = {}
        self.stopped_on_stream = False
        self.whole_run = False

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float | None:
        return None if self.timeout is None else self.timeout - self.elapsed

    def report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.run, self.elapsed)

    def check_deadline(self) -> None:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise WaitTimeout(self.thread_id, self.run, self.timeout or 0)

    def next_tick(self) -> float:
        remaining = self.remaining()
        return TICK_S if remaining is None else max(min(TICK_S, remaining), 0.001)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C stops the waiting, not the run: say which run continues and how to cancel."""
        try:
            yield
        except KeyboardInterrupt:
            raise WaitInterrupted(self.thread_id, self.run) from None

    # -- the two ways to notice ------------------------------------------------------------
    def follow(self, stream: Any, *, whole_run: bool = True) -> Any:
        """The run's status from its SSE stream until it stops; polls if the stream ends first.

        `whole_run`: the stream began with the run (create), so it carries all its messages;
        a stream after submitting tool outputs misses those of earlier legs.
        """
        self.whole_run = whole_run
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        reader = threading.Thread(
            target=_pump, args=(stream, events), daemon=True, name="aigw-run-stream"
        )
        reader.start()
        finished = False
        try:
            while True:
                try:
                    kind, value = events.get(timeout=self.next_tick())
                except queue.Empty:
                    self.report()
                    self.check_deadline()
                    continue
                if kind == "message":
                    self.streamed_messages[value.id] = value
                    self.check_deadline()
                    continue
                if kind == "run":
                    self.run = value
                    self.report()
                    if value.status in STOP_STATUSES:
                        # The server ends the stream itself right after; the reader drains it.
                        finished = self.stopped_on_stream = True
                        return value
                    self.check_deadline()
                    continue
                finished = True
                if kind == "error" and (self.run is None or not _is_connection_error(value)):
                    raise _stream_error(value)
                break  # the stream ended (or dropped) before the run stopped
        finally:
            if not finished:  # timeout or Ctrl-C: stop reading a stream nobody will use
                _close_quietly(stream)
        if self.run is None:
            raise AigwError("the run's event stream ended before the run was created")
        return self.poll(self.run, first_wait=0.0)

    def reply_from_stream(self) -> list[Any] | None:
        """The completed run's messages as streamed (oldest first), or None when the stream
        did not carry the run to its end (then they must be listed)."""
        if not (self.stopped_on_stream and self.whole_run) or self.run is None:
            return None
        run_id = self.run.id
        mine = [m for m in self.streamed_messages.values() if m.run_id == run_id]
        return sorted(mine, key=lambda m: m.created_at)

    def poll(self, run: Any, *, first_wait: float = DEFAULT_POLL_S) -> Any:
        """GET the run until it stops, sleeping as `openai-poll-after-ms` asks."""
        runs = self.app.openai.beta.threads.runs
        self.run = run
        self.report()
        wait = first_wait
        while self.run.status not in STOP_STATUSES:
            self.sleep(wait)
            raw = runs.with_raw_response.retrieve(self.run.id, thread_id=self.thread_id)
            self.run = raw.parse()
            self.report()
            wait = poll_after(raw.headers)
        return self.run

    def sleep(self, seconds: float) -> None:
        """Sleep, reporting progress and giving up at the deadline."""
        until = self.clock() + seconds
        while True:
            self.check_deadline()
            left = until - self.clock()
            if left <= 0:
                return
            time.sleep(min(left, self.next_tick()))
            self.report()


def _is_connection_error(exc: BaseException) -> bool:
    import openai

    return isinstance(exc, openai.APIConnectionError)


def _stream_error(exc: BaseException) -> BaseException:
    """An `error` event inside the stream arrives as a bare openai.APIError: give it words."""
    import openai

    if isinstance(exc, openai.APIError) and not isinstance(
        exc, openai.APIStatusError | openai.APIConnectionError
    ):
        return AigwError(f"the run's event stream reported an error: {exc.message}")
    return exc


def _close_quietly(stream: Any) -> None:
    # The stream is being abandoned; its errors do not matter any more.
    with contextlib.suppress(Exception):
        stream.close()
