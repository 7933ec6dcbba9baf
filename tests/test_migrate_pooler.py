"""`aigw migrate` through a transaction-mode pooler (PgBouncer), the way Supabase's pooler on
port 6543 works: no server-side prepared statements, no session state between transactions.
Skipped when the `pgbouncer` binary is not installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from aigw.storage.migrations import MigrationError, apply, shipped_sql_dir, status
from tests.helpers.migrations import apply_all

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pooled_db(fresh_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`fresh_db` reached through PgBouncer in transaction mode."""
    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if binary is None:
        pytest.skip("pgbouncer is not installed")
    target = conninfo_to_dict(fresh_db)
    user = str(target.get("user") or "postgres")
    port = _free_port()
    folder = tmp_path_factory.mktemp("pgbouncer")
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={target.get("host", "127.0.0.1")} port={target.get("port", 5432)}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = 4
ignore_startup_parameters = extra_float_digits,options,application_name
"""
    )
    folder.chmod(0o755)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        command[1:1] = ["-u", "postgres"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"postgresql://{user}@127.0.0.1:{port}/{target['dbname']}"
    try:
        for _ in range(200):
            if server.poll() is not None:
                problem = server.stderr.read().decode() if server.stderr else ""
                pytest.fail(f"pgbouncer exited: {problem}")
            try:
                with psycopg.connect(url, prepare_threshold=None, connect_timeout=2):
                    break
            except psycopg.OperationalError:
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_migrations_apply_once_through_a_transaction_pooler(pooled_db: str) -> None:
    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(apply_all(pooled_db))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=len) == [[], sorted(max(results, key=len))]
    assert max(results, key=len)[0] == "0001_core"
    assert apply_all(pooled_db) == []


def test_a_dry_run_and_a_failure_work_through_the_pooler(pooled_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    shutil.copy(shipped_sql_dir() / "0001_core.sql", folder)
    dry = apply(pooled_db, folder, dry_run=True)
    assert "table public.ai_gateway_logs" in dry.creates

    (folder / "0002_clash.sql").write_text("SELECT 1;\n\nCREATE TABLE agents (id int);\n")
    with pytest.raises(MigrationError) as caught:
        apply_all(pooled_db, folder)
    assert '0002_clash.sql:3: relation "agents" already exists' in caught.value.message
    assert [s.state for s in status(pooled_db, folder).migrations] == ["applied", "pending"]
