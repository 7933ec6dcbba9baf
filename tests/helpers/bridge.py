"""The bridge on a thread, with the sandbox's /v1/chat/completions as its model.

Clients are made like the design document's: the OpenAI SDK with the gateway's base URL and
the gateway-key header.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai

from aigw.bridge.legs import ModelCall
from aigw.bridge.serve import BridgeServer
from aigw.sandbox import Sandbox

GATEWAY_HEADER = {"x-vercel-ai-gateway-key": "gk-test"}


def design_doc_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test", base_url=base_url, default_headers=GATEWAY_HEADER, max_retries=0
    )


@contextmanager
def bridge_over(
    model: Sandbox | str, database: str | Path, **options: Any
) -> Iterator[BridgeServer]:
    """A bridge whose model is `model` (a sandbox or a base URL), its state in `database`."""
    url = model if isinstance(model, str) else model.url
    server = BridgeServer(database, url, "sk-model", **options).start()
    try:
        yield server
    finally:
        server.stop()


class Calls(list[ModelCall]):
    """The model calls the bridge reported, for tests of the log rows."""

    def __call__(self, call: ModelCall) -> None:
        self.append(call)
