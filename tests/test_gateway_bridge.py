"""`aigw gateway serve --assistants local`: the gateway answers the Assistants API itself,
each run made through the sandbox's chat completions as the model, its calls logged."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from aigw.sandbox import Sandbox
from aigw.sandbox.http import Request
from aigw.server.runtime import ServerOptions
from tests.helpers.cli import Cli
from tests.helpers.gateway import (
    GATEWAY_KEY,
    KEY_HEADER,
    RunningGateway,
    gateway,
    http,
    serve_process,
)
from tests.helpers.sandbox import WEATHER, Collector

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def local(fresh_sandbox: Sandbox) -> Iterator[RunningGateway]:
    """The gateway answering the Assistants API; the sandbox is only its model."""
    options = ServerOptions(
        upstream=fresh_sandbox.url, assistants="local", model_url=fresh_sandbox.url
    )
    with gateway(fresh_sandbox.url, options=options, openai_api_key="sk-model") as running:
        yield running


def test_the_sdk_runs_the_tool_flow_on_the_gateway_and_every_call_is_logged(
    local: RunningGateway, fresh_sandbox: Sandbox
) -> None:
    client = local.client()
    assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[WEATHER])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "get_weather city=Lima"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    assert run.status == "requires_action" and run.required_action is not None
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    handler = Collector()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "warm"}],
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert handler.text == "get_weather returned warm"
    assert handler.events[-1] == "thread.run.completed"
    # Nothing of the Assistants API reached the sandbox's own: it only answered chats.
    assert fresh_sandbox.state.assistants.items == {}
    assert [r["model"] for r in fresh_sandbox.state.chat_requests] == ["gpt-4o-mini"] * 2

    submitted = ("POST", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", 200)

    def bridge_rows(rows: list) -> list[tuple]:
        return [(r.method, r.endpoint, r.status_code) for r in rows if r.route == "bridge"]

    # The streamed answer's row is made when its stream ends, which may be after the model's.
    rows = local.rows_when(
        lambda rows: (
            len([r for r in rows if r.route == "model"]) == 2 and submitted in bridge_rows(rows)
        )
    )
    model_rows = [r for r in rows if r.route == "model"]
    assert [(r.endpoint, r.status_code, r.run_id) for r in model_rows] == [
        ("/chat/completions", 200, run.id)
    ] * 2
    assert all(r.total_tokens and r.model == "gpt-4o-mini" for r in model_rows)
    assert ("POST", "/v1/assistants", 200) in bridge_rows(rows)
    assert all(r.source == "aigw-gateway" for r in rows)


def test_metrics_prices_the_bridges_model_calls(local: RunningGateway, cli: Cli) -> None:
    client = local.client()
    assistant = client.beta.assistants.create(model="gpt-4o-mini")
    runs = [
        client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": f"Hello number {n}"}]},
            poll_interval_ms=10,
        )
        for n in range(3)
    ]
    assert all(run.status == "completed" and run.usage for run in runs)
    local.rows_when(lambda rows: len([r for r in rows if r.route == "model"]) == 3)
    result = cli("metrics", "--json")
    assert result.exit_code == 0, result.stderr
    (model,) = json.loads(result.stdout)["cost_by_model"]
    prompt = sum(run.usage.prompt_tokens for run in runs if run.usage)
    completion = sum(run.usage.completion_tokens for run in runs if run.usage)
    assert model["key"] == "gpt-4o-mini" and model["estimated"] is False
    assert (model["tokens_in"], model["tokens_out"]) == (prompt, completion)
    assert model["cost_usd"] == pytest.approx((prompt * 0.15 + completion * 0.60) / 1e6)
    (agent,) = json.loads(result.stdout)["cost_by_agent"]
    assert agent["key"] == assistant.id


def test_assistants_calls_need_the_gateway_key(local: RunningGateway) -> None:
    status, _, body = http(
        "GET", f"{local.url}/assistants", headers={"Authorization": "Bearer sk-x"}
    )
    assert status == 401 and "gateway key" in json.loads(body)["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        local.client(gateway_key="gk-wrong").beta.assistants.list()


def test_other_routes_still_go_to_the_upstream(local: RunningGateway) -> None:
    completion = local.client().chat.completions.create(
        model="m", messages=[{"role": "user", "content": "through"}]
    )
    assert completion.choices[0].message.content == "You said: through"


def test_serve_local_assistants_from_the_command_line(fresh_sandbox: Sandbox) -> None:
    served = serve_process(
        "--assistants",
        "local",
        "--model-url",
        fresh_sandbox.url,
        "--upstream",
        fresh_sandbox.url,
        env={"OPENAI_API_KEY": "sk-model"},
    )
    try:
        client = openai.OpenAI(
            api_key="sk-app", base_url=served.url, default_headers={KEY_HEADER: GATEWAY_KEY}
        )
        assistant = client.beta.assistants.create(model="gpt-4o")
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "hi"}]},
            poll_interval_ms=10,
        )
        assert run.status == "completed"
        assert fresh_sandbox.state.assistants.items == {}
    finally:
        code, err = served.stop()
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--assistants", "local"], "--assistants local needs --model-url"),
        (["--assistants", "remote"], "--assistants must be proxy or local"),
        (["--model-url", "http://127.0.0.1:1/v1"], "--model-url needs --assistants local"),
        (["--assistants", "local", "--model-url", "ftp://x"], "must be an http(s) URL"),
    ],
)
def test_bad_assistants_options_are_one_line_usage_errors(
    cli, monkeypatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("GATEWAY_API_KEY", GATEWAY_KEY)
    result = cli("gateway", "serve", "--port", "0", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_the_runs_sampling_and_the_settings_model_key_reach_the_model(
    local: RunningGateway, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys: list[str | None] = []
    dispatch = fresh_sandbox.dispatch

    def spy(request: Request) -> object:
        if request.path == "/v1/chat/completions":
            keys.append(request.headers.get("authorization"))
        return dispatch(request)

    monkeypatch.setattr(fresh_sandbox, "dispatch", spy)
    client = local.client()
    assistant = client.beta.assistants.create(model="gpt-4o")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "hi"}]},
        temperature=0.3,
        top_p=0.8,
        poll_interval_ms=10,
    )
    assert run.status == "completed"
    request = fresh_sandbox.state.chat_requests[-1]
    assert (request["temperature"], request["top_p"]) == (0.3, 0.8)
    assert keys == ["Bearer sk-model"]  # the settings' OpenAI key, not the app's
