"""Runs: create, get, list, cancel, submit tool outputs, steps — each optionally waited for."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aigw.services.assistants import follow_pages
from aigw.services.messages import mirror_messages, run_messages
from aigw.services.records import check_writable, note_unrecorded
from aigw.services.requests import ListQuery, RunCreate, ToolOutputs, check_ids
from aigw.services.wait import Progress, RunOutcome, RunWatch, poll_after

if TYPE_CHECKING:
    from aigw.context import AppContext


def create_run(app: AppContext, thread_id: str, request: RunCreate) -> Any:
    check_ids(app, thread_id=thread_id, assistant_id=request.assistant_id)
    check_writable(app)
    return app.openai.beta.threads.runs.create(thread_id, **request.params())


def get_run(app: AppContext, thread_id: str, run_id: str) -> Any:
    check_ids(app, thread_id=thread_id, run_id=run_id)
    return app.openai.beta.threads.runs.retrieve(run_id, thread_id=thread_id)


def list_runs(
    app: AppContext, thread_id: str, query: ListQuery, *, all_pages: bool = False
) -> list[Any]:
    check_ids(app, thread_id=thread_id)
    page = app.openai.beta.threads.runs.list(thread_id, **query.params())
    return list(follow_pages(page, all_pages))


def cancel_run(app: AppContext, thread_id: str, run_id: str) -> Any:
    check_ids(app, thread_id=thread_id, run_id=run_id)
    return app.openai.beta.threads.runs.cancel(run_id, thread_id=thread_id)


def submit_tool_outputs(app: AppContext, thread_id: str, run_id: str, request: ToolOutputs) -> Any:
    check_ids(app, thread_id=thread_id, run_id=run_id)
    return app.openai.beta.threads.runs.submit_tool_outputs(
        run_id, thread_id=thread_id, **request.params()
    )


def list_steps(
    app: AppContext, thread_id: str, run_id: str, query: ListQuery, *, all_pages: bool = False
) -> list[Any]:
    check_ids(app, thread_id=thread_id, run_id=run_id)
    page = app.openai.beta.threads.runs.steps.list(run_id, thread_id=thread_id, **query.params())
    return list(follow_pages(page, all_pages))


# -- waited for -----------------------------------------------------------------------------


def finish(app: AppContext, thread_id: str, watch: RunWatch, run: Any) -> RunOutcome:
    """A stopped run's outcome; a completed one brings its reply, copied to the store."""
    messages: list[Any] = []
    if run.status == "completed":
        streamed = watch.reply_from_stream()
        if streamed is not None:
            messages = streamed
        else:
            try:  # the run is done upstream: a failed read of its reply must not undo that
                messages = run_messages(app, thread_id, run.id)
            except Exception as exc:
                note_unrecorded(
                    app,
                    f"the reply of {run.id}",
                    exc,
                    f"read it with `aigw messages list {thread_id} --run {run.id}`",
                )
        mirror_messages(app, thread_id, [m for m in messages if m.role == "assistant"])
    return RunOutcome(run=run, messages=messages, elapsed=watch.elapsed)


def _waited(
    app: AppContext,
    thread_id: str,
    until_stopped: Callable[[Any, RunWatch], Any],
    *,
    timeout: float | None,
    on_progress: Progress | None,
) -> RunOutcome:
    """Build the client (not part of the wait), start the deadline, run `until_stopped(runs,
    watch)` with Ctrl-C turned into "the run continues", and finish with the reply."""
    runs = app.openai.beta.threads.runs
    watch = RunWatch(app, thread_id, timeout=timeout, on_progress=on_progress)
    with watch.interruptible():
        run = until_stopped(runs, watch)
    return finish(app, thread_id, watch, run)


def create_run_and_wait(
    app: AppContext,
    thread_id: str,
    request: RunCreate,
    *,
    timeout: float | None,
    on_progress: Progress | None = None,
) -> RunOutcome:
    """Start a run with `stream=True` and follow it until it stops or `timeout` passes."""
    check_ids(app, thread_id=thread_id, assistant_id=request.assistant_id)
    check_writable(app)

    def start(runs: Any, watch: RunWatch) -> Any:
        return watch.follow(runs.create(thread_id, stream=True, **request.params()))

    return _waited(app, thread_id, start, timeout=timeout, on_progress=on_progress)


def submit_tool_outputs_and_wait(
    app: AppContext,
    thread_id: str,
    run_id: str,
    request: ToolOutputs,
    *,
    timeout: float | None,
    on_progress: Progress | None = None,
) -> RunOutcome:
    """Answer the tool calls on a new stream (the first one closed at requires_action)."""
    check_ids(app, thread_id=thread_id, run_id=run_id)

    def submit(runs: Any, watch: RunWatch) -> Any:
        params = request.params()
        stream = runs.submit_tool_outputs(run_id, thread_id=thread_id, stream=True, **params)
        return watch.follow(stream, whole_run=False)

    return _waited(app, thread_id, submit, timeout=timeout, on_progress=on_progress)


def cancel_run_and_wait(
    app: AppContext,
    thread_id: str,
    run_id: str,
    *,
    timeout: float | None,
    on_progress: Progress | None = None,
) -> RunOutcome:
    """Cancel, then poll until `cancelled` (or whatever the run reached first): the API has
    no stream for an existing run."""
    check_ids(app, thread_id=thread_id, run_id=run_id)

    def cancel(runs: Any, watch: RunWatch) -> Any:
        raw = runs.with_raw_response.cancel(run_id, thread_id=thread_id)
        return watch.poll(raw.parse(), first_wait=poll_after(raw.headers))

    return _waited(app, thread_id, cancel, timeout=timeout, on_progress=on_progress)
