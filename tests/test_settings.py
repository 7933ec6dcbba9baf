"""Settings: precedence, conversions and the one-line errors of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigw.errors import ConfigError, ExitCode
from aigw.settings import FIELDS, SecretStr, Settings, env_names, load_settings, value_sources


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in FIELDS:
        for variable in env_names(name):
            monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_flag_beats_env_beats_dotenv_beats_default(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".env").write_text("AIGW_TIMEOUT=7s\nAIGW_MAX_RETRIES=4\nAIGW_CACHE_TTL=9s\n")
    monkeypatch.setenv("aigw_max_retries", "5")  # names are case-insensitive
    monkeypatch.setenv("AIGW_CACHE_TTL", "11s")
    settings = load_settings(cache_ttl=12.5, home=None)  # None: not given
    assert (settings.timeout, settings.max_retries, settings.cache_ttl) == (7.0, 5, 12.5)
    assert settings.breaker_failures == 5  # default
    sources = value_sources(settings, {"cache_ttl": 12.5})
    assert (sources["timeout"], sources["max_retries"], sources["cache_ttl"]) == (
        ".env",
        "env",
        "flag",
    )
    assert sources["breaker_failures"] == "default"


def test_values_are_converted_to_their_types(workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("USE_AI_GATEWAY", "off")
    monkeypatch.setenv("AI_GATEWAY_URL", "https://gw.example/v1/")
    monkeypatch.setenv("GATEWAY_API_KEY", "vkey-abcdef123456")
    monkeypatch.setenv("AIGW_REDACT_PATTERNS", '["ACME-\\\\d+"]')
    monkeypatch.setenv("AIGW_PRICES", '{"m": [1, 2.5]}')
    monkeypatch.setenv("AIGW_HOME", str(workdir / "state"))
    settings = Settings()
    assert settings.use_ai_gateway is False and settings.route == "direct"
    assert settings.ai_gateway_url == "https://gw.example/v1"
    assert isinstance(settings.gateway_api_key, SecretStr)
    assert settings.gateway_keys == ["vkey-abcdef123456"]
    assert "abcdef" not in repr(settings) and "abcdef" not in str(settings.gateway_api_key)
    assert settings.redact_patterns == ["ACME-\\d+"]
    assert settings.prices == {"m": (1.0, 2.5)}
    assert settings.home == workdir / "state"
    assert Settings(gateway_api_key="gk-1").gateway_api_key == SecretStr("gk-1")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("USE_AI_GATEWAY", "maybe", "valid boolean"),
        ("AIGW_TIMEOUT", "0", "greater than 0"),
        ("AIGW_TIMEOUT", "soon", "expects a duration such as 90s"),
        ("AIGW_MAX_RETRIES", "21", "less than or equal to 20"),
        ("AIGW_PAYLOAD_MAX_BYTES", "3.5", "valid integer"),
        ("AI_GATEWAY_URL", "gw.example", "http(s) URL"),
        ("AIGW_PRICES", '{"m": [1]}', "[input, output]"),
        ("AIGW_REDACT_PATTERNS", "[1", "valid JSON"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_its_variable(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.code == ExitCode.CONFIG
    assert caught.value.message.startswith(f"invalid configuration {variable}: ")
    assert message in caught.value.message


def test_an_empty_variable_gives_way_to_the_next_one(workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", "")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/x")
    assert Settings().db_url == "postgresql://u:pw@db/x"
    assert not SecretStr("") and SecretStr("x")


def test_one_body_cap_read_under_its_name_or_its_earlier_one(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGW_MAX_RESPONSE_BYTES", "2048")
    assert Settings().max_body_bytes == 2048
    monkeypatch.setenv("AIGW_MAX_BODY_BYTES", "4096")
    assert Settings().max_body_bytes == 4096  # the current name wins
