"""`aigw demo`'s stage: the sandbox in process and settings that point at it, nothing else.

The demo runs on the embedded defaults only: a private AIGW_HOME (temporary unless kept),
the local SQLite store, no remote store even if the shell has one configured, no network.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aigw.settings import Settings

DEMO_GATEWAY_KEY = "vkey-demo-0000000000000000"
DEMO_OPENAI_KEY = "sk-demo-00000000000000000000"


@dataclass
class DemoStage:
    url: str
    home: Path
    settings: Settings
    kept: bool


@contextmanager
def demo_stage(*, keep: Path | None, run_ms: int) -> Iterator[DemoStage]:
    """Start the sandbox on a free loopback port; remove the temporary home afterwards."""
    from aigw.sandbox import Sandbox, SandboxOptions

    home = keep if keep is not None else Path(tempfile.mkdtemp(prefix="aigw-demo-"))
    sandbox = Sandbox(
        SandboxOptions(gateway_keys=[DEMO_GATEWAY_KEY], run_duration_ms=run_ms, poll_after_ms=50)
    ).start()
    settings = Settings(
        home=home,
        use_ai_gateway=True,
        ai_gateway_url=sandbox.url,
        gateway_api_key=DEMO_GATEWAY_KEY,
        openai_api_key=DEMO_OPENAI_KEY,
        # The embedded defaults: whatever the shell points at, the demo stays local.
        supabase_url=None,
        supabase_service_role_key=None,
        supabase_db_url=None,
        database_url=None,
        rate_limit=None,
        gateway_api_key_next=None,
        gateway_api_keys=None,
    )
    try:
        yield DemoStage(sandbox.url, home, settings, kept=keep is not None)
    finally:
        sandbox.stop()
        if keep is None:
            shutil.rmtree(home, ignore_errors=True)
