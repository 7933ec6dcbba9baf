"""The waiting service: polling, deadlines, interruption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aigw.context import AppContext
from aigw.errors import ExitCode
from aigw.services.requests import RunCreate
from aigw.services.runs import create_run_and_wait
from aigw.services.wait import DEFAULT_POLL_S, WaitInterrupted, WaitTimeout, poll_after
from tests.helpers.cli import Cli, make_assistant, make_thread


def test_polling_follows_the_servers_poll_after_header() -> None:
    assert poll_after({"openai-poll-after-ms": "250"}) == 0.25
    assert poll_after({}) == DEFAULT_POLL_S
    assert poll_after({"openai-poll-after-ms": "soon"}) == DEFAULT_POLL_S


def _slow_run(cli: Cli, tmp_path: Path) -> tuple[str, RunCreate]:
    assistant = make_assistant(cli, tmp_path)
    thread_id = make_thread(cli, "take your time")
    return thread_id, RunCreate(assistant_id=assistant, metadata={"sandbox_run_ms": "60000"})


def test_ctrl_c_while_waiting_names_the_run_and_the_cancel_command(
    cli: Cli, gateway_env, tmp_path: Path
) -> None:
    thread_id, request = _slow_run(cli, tmp_path)

    def press_ctrl_c_once_the_run_is_known(run: Any, elapsed: float) -> None:
        if run is not None:
            raise KeyboardInterrupt

    app = AppContext()
    try:
        with pytest.raises(WaitInterrupted) as caught:
            create_run_and_wait(
                app,
                thread_id,
                request,
                timeout=None,
                on_progress=press_ctrl_c_once_the_run_is_known,
            )
    finally:
        app.close()
    error = caught.value
    assert error.code == ExitCode.INTERRUPTED
    assert error.message.startswith("stopped waiting: run run_") and "(queued)" in error.message
    assert error.hint is not None and f"aigw runs cancel {thread_id} run_" in error.hint


def test_the_deadline_holds_while_the_stream_is_silent(
    cli: Cli, gateway_env, tmp_path: Path
) -> None:
    thread_id, request = _slow_run(cli, tmp_path)
    seen: list[str] = []
    app = AppContext()
    try:
        with pytest.raises(WaitTimeout) as caught:
            create_run_and_wait(
                app,
                thread_id,
                request,
                timeout=0.3,
                on_progress=lambda run, elapsed: seen.append(run.status if run else "-"),
            )
    finally:
        app.close()
    assert caught.value.code == ExitCode.TIMEOUT
    assert "queued" in seen  # the stream delivered the run before the deadline
    assert "continues on the server" in caught.value.message
