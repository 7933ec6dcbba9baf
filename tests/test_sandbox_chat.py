"""The sandbox's /v1/chat/completions: the runs' rules through the real SDK, in the spec's shape."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from aigw.sandbox import Sandbox
from tests.helpers.openapi import CHAT_SPEC, checker
from tests.helpers.sandbox import WEATHER, client_for, running

conforms = checker(CHAT_SPEC)


def chunks_of(text: str) -> list[dict[str, Any]]:
    """The JSON chunks of a raw chat stream (its `data:` lines), `[DONE]` checked and dropped."""
    data = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert not any(line.startswith("event:") for line in text.splitlines())
    return [json.loads(item) for item in data[:-1]]


def test_a_chat_gets_the_echo_of_its_last_user_message(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "You said: first"},
            {"role": "user", "content": "hello there"},
        ],
    )
    body = json.loads(raw.http_response.text)
    conforms("CreateChatCompletionResponse", body)
    completion = raw.parse()
    assert completion.choices[0].message.content == "You said: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.completion_tokens > 0


def test_a_named_function_comes_back_as_a_tool_call_with_its_arguments(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "get_weather city=Paris days=3"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}  # type: ignore[union-attr]


def test_tool_messages_after_the_calls_are_the_results_it_reports(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"},
        },
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "user", "content": "get_weather and get_time"},
            {"role": "assistant", "content": None, "tool_calls": calls},  # type: ignore[typeddict-item]
            {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert (
        completion.choices[0].message.content
        == "get_time returned noon; get_weather returned sunny"
    )


def test_a_stream_sends_the_reply_in_chunks_then_usage_then_done(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    words = " ".join(f"w{i}" for i in range(20))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": words}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = chunks_of(raw.http_response.read().decode())
    for chunk in chunks:
        conforms("CreateChatCompletionStreamResponse", chunk)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == f"You said: {words}"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_the_sdk_puts_streamed_tool_calls_together(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "get_weather city=Oslo"}],
        tools=[WEATHER],  # type: ignore[list-item]
        stream=True,
    )
    names, arguments, finish = "", "", None
    for chunk in stream:
        assert chunk.usage is None  # not asked for
        for call in chunk.choices[0].delta.tool_calls or []:
            names += call.function.name or "" if call.function else ""
            arguments += call.function.arguments or "" if call.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert (names, json.loads(arguments), finish) == ("get_weather", {"city": "Oslo"}, "tool_calls")


@pytest.mark.parametrize(
    ("marker", "error", "code"),
    [
        ("[sandbox:fail]", openai.InternalServerError, "server_error"),
        ("[sandbox:fail:rate_limit_exceeded]", openai.RateLimitError, "rate_limit_exceeded"),
        ("[sandbox:fail:invalid_prompt]", openai.BadRequestError, "invalid_prompt"),
    ],
)
def test_the_failure_marker_answers_an_api_error(
    sandbox: Sandbox, marker: str, error: type[openai.APIStatusError], code: str
) -> None:
    client = client_for(sandbox)
    with pytest.raises(error) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"please {marker}"}], stream=True
        )
    assert caught.value.code == code


def test_a_prompt_over_the_context_window_is_refused_as_the_api_does() -> None:
    with running(context_tokens=10) as server:
        client = client_for(server)
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x" * 100}]
            )
        assert caught.value.code == "context_length_exceeded"
        assert "maximum context length is 10 tokens" in caught.value.message


def test_requests_are_kept_for_checking_and_bad_ones_answer_400(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    with pytest.raises(openai.BadRequestError, match="'messages'"):
        client.chat.completions.create(model="gpt-4o", messages=[])
    with pytest.raises(openai.BadRequestError, match="role 'tool'"):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "tool", "tool_call_id": "x", "content": "y"}]
        )
    client.chat.completions.create(model="kept", messages=[{"role": "user", "content": "k"}])
    conforms("CreateChatCompletionRequest", sandbox.state.chat_requests[-1])
    assert sandbox.state.chat_requests[-1]["model"] == "kept"
