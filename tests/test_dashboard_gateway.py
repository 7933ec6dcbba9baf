"""The dashboard mounted in the gateway server at /dashboard, behind the gateway key: the key's
header or HTTP Basic auth (the browser's way) opens it, anything else is a 401 asking for it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from aigw.sandbox import Sandbox
from tests.helpers.cli import Cli
from tests.helpers.dashboard import metrics_json, seed_local
from tests.helpers.gateway import GATEWAY_KEY, KEY_HEADER, gateway, http


def basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"ops:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_the_gateway_serves_the_dashboard_only_with_its_key(
    sandbox: Sandbox, isolated_env: Path
) -> None:
    with gateway(sandbox.url, home=isolated_env) as running:
        base = running.url.removesuffix("/v1").rstrip("/") + "/dashboard/"
        without = http("GET", base)
        wrong = http("GET", base + "api/metrics", headers=basic("gk-wrong"))
        header = http("GET", base, headers={KEY_HEADER: GATEWAY_KEY})
        browser = http("GET", base + "static/dashboard.js", headers=basic(GATEWAY_KEY))
    assert without[0] == wrong[0] == 401
    assert without[1]["www-authenticate"].startswith("Basic ")
    assert json.loads(without[2])["error"]["type"] == "invalid_request_error"
    assert header[0] == browser[0] == 200
    assert b"aigw dashboard" in header[2]


def test_through_the_gateway_the_numbers_are_aigw_metrics_json(
    sandbox: Sandbox, isolated_env: Path, cli: Cli
) -> None:
    seed_local(isolated_env)
    with gateway(sandbox.url, home=isolated_env) as running:
        base = running.url.removesuffix("/v1").rstrip("/") + "/dashboard/"
        status, _, body = http(
            "GET", base + "api/metrics?since=3650d", headers={KEY_HEADER: GATEWAY_KEY}
        )
    assert status == 200
    report = json.loads(body)["report"]
    assert report["total"]["attempts"] > 0
    assert report == metrics_json(cli, report)
