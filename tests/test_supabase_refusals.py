"""The supabase-py path of the rules that keep one bad row from blocking the rest, by the exact
REST requests sent (pytest-httpx): a refused row is set aside, a conversation's user is looked
up through the Auth admin API before anything is created."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from pytest_httpx import HTTPXMock

from aigw.services.sync import sync_logs
from aigw.storage.sqlite import SQLiteRepository
from aigw.storage.supabase_rest import SupabaseRepository
from tests.helpers.rows import records

URL = "https://proj.supabase.co"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
LOGS = re.compile(re.escape(f"{URL}/rest/v1/ai_gateway_logs") + ".*")


def test_a_row_refused_over_rest_is_set_aside_and_the_other_goes(
    httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    rows = records(2)
    local = SQLiteRepository(tmp_path / "aigw.sqlite3")
    local.write(rows)
    out_of_range = {
        "code": "22003",
        "message": 'value "3000000000" is out of range for type integer',
    }
    httpx_mock.add_response(method="POST", url=LOGS, status_code=400, json=out_of_range)
    httpx_mock.add_response(method="POST", url=LOGS, status_code=201)
    httpx_mock.add_response(method="POST", url=LOGS, status_code=400, json=out_of_range)

    report = sync_logs(local, SupabaseRepository(URL, KEY))

    sent = [[row["id"] for row in json.loads(r.content)] for r in httpx_mock.get_requests()]
    assert sent == [[rows[0].id, rows[1].id], [rows[0].id], [rows[1].id]]
    assert (report.error, report.synced, report.set_aside, report.pending) == (None, 1, 1, 0)
    (aside,) = local.set_aside_rows()
    assert aside.id == rows[1].id and "out of range" in aside.reason
    local.close()


def test_a_user_is_looked_up_through_the_auth_admin_api(httpx_mock: HTTPXMock) -> None:
    known, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    httpx_mock.add_response(
        method="GET",
        url=f"{URL}/auth/v1/admin/users/{known}",
        json={"id": known, "aud": "authenticated", "role": "authenticated",
              "created_at": "2026-01-01T00:00:00Z", "app_metadata": {}, "user_metadata": {}},
    )  # fmt: skip
    httpx_mock.add_response(
        method="GET",
        url=f"{URL}/auth/v1/admin/users/{unknown}",
        status_code=404,
        json={"code": 404, "error_code": "user_not_found", "msg": "User not found"},
    )
    store = SupabaseRepository(URL, KEY)
    assert store.user_exists(known) is True
    assert store.user_exists(unknown) is False
    for request in httpx_mock.get_requests():
        assert request.headers["apikey"] == KEY
        assert request.headers["authorization"] == f"Bearer {KEY}"
