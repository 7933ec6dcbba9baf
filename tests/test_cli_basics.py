"""The first slice's promises: settings and their sources, routes, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.cli import Cli, point_at


def test_config_show_masks_secrets_and_names_each_source(cli: Cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-supersecretvalue9876")
    (tmp_path / "work" / ".env").write_text("GATEWAY_API_KEY=vkey-fromdotenv-1234\n")
    result = cli("--direct", "config", "show", "--json")
    assert result.exit_code == 0, result.stderr
    assert "supersecret" not in result.stdout and "fromdotenv" not in result.stdout
    report = json.loads(result.stdout)
    rows = {row["variable"]: row for row in report["settings"]}
    assert rows["OPENAI_API_KEY"] == {
        "variable": "OPENAI_API_KEY",
        "value": "…9876",
        "source": "env",
        "secret": True,
    }
    assert rows["GATEWAY_API_KEY"]["source"] == ".env"
    assert rows["GATEWAY_API_KEY"]["value"] == "…1234"
    assert rows["USE_AI_GATEWAY"]["source"] == "flag"
    assert rows["AIGW_GATEWAY_KEY_HEADER"] == {
        "variable": "AIGW_GATEWAY_KEY_HEADER",
        "value": "x-vercel-ai-gateway-key",
        "source": "default",
        "secret": False,
    }
    assert report["route"] == "direct"
    assert report["base_url"] == "https://api.openai.com/v1"


def test_config_show_table_names_the_route(cli: Cli, monkeypatch) -> None:
    monkeypatch.setenv("AI_GATEWAY_URL", "https://gw.example.test/v1/")
    result = cli("config", "show")
    assert result.exit_code == 0
    assert "route: gateway → https://gw.example.test/v1" in result.stdout


def test_a_bad_setting_is_a_configuration_error(cli: Cli, monkeypatch) -> None:
    monkeypatch.setenv("USE_AI_GATEWAY", "maybe")
    result = cli("config", "show")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: invalid configuration USE_AI_GATEWAY")


def test_missing_openai_key_exits_3_with_a_hint(cli: Cli, sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AI_GATEWAY_URL", sandbox.url)
    monkeypatch.setenv("GATEWAY_API_KEY", "gk")
    result = cli("assistants", "list")
    assert result.exit_code == 3
    assert "OPENAI_API_KEY is not set" in result.stderr


def test_missing_gateway_key_on_the_gateway_route_exits_3(cli: Cli, sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AI_GATEWAY_URL", sandbox.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    result = cli("assistants", "list")
    assert result.exit_code == 3
    assert "GATEWAY_API_KEY is not set" in result.stderr


def test_the_gateway_route_sends_the_gateway_key(cli: Cli, keyed_sandbox, monkeypatch) -> None:
    point_at(monkeypatch, keyed_sandbox, gateway_key="gk-right")
    assert cli("assistants", "list", "--json").exit_code == 0


def test_a_wrong_gateway_key_says_to_check_gateway_api_key(cli: Cli, keyed_sandbox, monkeypatch):
    point_at(monkeypatch, keyed_sandbox, gateway_key="gk-wrong")
    result = cli("assistants", "list")
    assert result.exit_code == 1
    first, hint = result.stderr.splitlines()[:2]
    assert first.startswith("error: 401")
    assert "GATEWAY_API_KEY" in hint
    assert "Traceback" not in result.stderr


def test_the_direct_route_sends_no_gateway_header(cli: Cli, keyed_sandbox, monkeypatch) -> None:
    # The keyed sandbox stands in for a server that requires the gateway header: on the direct
    # route aigw must not send it, so the call is refused, and the hint names OPENAI_API_KEY.
    point_at(monkeypatch, keyed_sandbox, gateway_key="gk-right")
    monkeypatch.setenv("OPENAI_BASE_URL", keyed_sandbox.url)
    monkeypatch.setenv("USE_AI_GATEWAY", "false")
    result = cli("assistants", "list")
    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in result.stderr


def test_an_unreachable_upstream_exits_4(cli: Cli, monkeypatch) -> None:
    monkeypatch.setenv("AI_GATEWAY_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("GATEWAY_API_KEY", "gk")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    result = cli("assistants", "list")
    assert result.exit_code == 4
    assert "cannot reach http://127.0.0.1:9/v1" in result.stderr


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--name", "n" * 257], "name"),
        (["--description", "d" * 513], "description"),
        (["--temperature", "2.5"], "temperature"),
        (["--top-p", "1.5"], "top_p"),
        ([arg for i in range(17) for arg in ("--metadata", f"k{i}=v")], "metadata"),
        (["--metadata", "k" * 65 + "=v"], "metadata"),
        (["--metadata", "novalue"], "--metadata"),
        (["--tool", "browser"], "--tool"),
        (["--tool", "function:/nonexistent.json"], "--tool"),
    ],
)
def test_invalid_input_exits_2_naming_the_field_and_sends_nothing(
    cli: Cli, fresh_sandbox, monkeypatch, args, field
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    result = cli("assistants", "create", "--model", "gpt-4o", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert field in lines[0] and lines[0].startswith("error:")
    assert fresh_sandbox.state.request_count == 0


def test_an_id_with_the_wrong_prefix_is_refused_unless_the_check_is_off(
    cli: Cli, fresh_sandbox, monkeypatch
) -> None:
    point_at(monkeypatch, fresh_sandbox)
    refused = cli("assistants", "get", "assistant-42")
    assert refused.exit_code == 2 and "asst_" in refused.stderr
    assert fresh_sandbox.state.request_count == 0
    monkeypatch.setenv("AIGW_CHECK_ID_PREFIXES", "false")
    sent = cli("assistants", "get", "assistant-42")
    assert sent.exit_code == 1 and "No assistant found" in sent.stderr
    assert fresh_sandbox.state.request_count == 1


def test_help_and_local_commands_do_not_import_the_sdks(monkeypatch) -> None:
    # Even with the shared state in Redis: only a command that uses the state imports redis.
    monkeypatch.setenv("AIGW_STATE_URL", "redis://:secret@127.0.0.1:6379/0")
    probe = (
        "import sys\n"
        "from aigw.cli import app\n"
        "for args in (['--help'], ['config', 'show'], ['assistants', '--help'],\n"
        "             ['sandbox', '--help'], ['completions', 'show', 'bash']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (args, exc.code)\n"
        "heavy = ('openai', 'supabase', 'httpx2', 'httpx', 'redis', 'aiohttp')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr


def test_python_dash_m_aigw_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aigw", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.startswith("aigw ")


def test_no_deprecation_warning_reaches_the_terminal(sandbox, tmp_path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "AIGW_HOME": str(tmp_path / "home"),
        "AI_GATEWAY_URL": sandbox.url,
        "GATEWAY_API_KEY": "gk",
        "OPENAI_API_KEY": "sk-x",
        "PYTHONWARNINGS": "default",
    }
    done = subprocess.run(
        [sys.executable, "-m", "aigw", "assistants", "create", "--model", "m", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "deprecated" not in done.stderr.lower()


def test_the_program_freezes_its_objects_so_the_exit_collection_skips_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    import aigw.cli
    from aigw import entry

    monkeypatch.setattr(aigw.cli, "main", lambda: None)
    try:
        entry.main()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
