"""The one typed configuration object, and where each of its values came from.

The seed's variables keep their own names (OPENAI_API_KEY, AI_GATEWAY_URL, …) so an app's
existing `.env` works unchanged; aigw's own settings live under the AIGW_ prefix.
Precedence, highest first: command-line flag, environment, `.env` in the working folder, default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aigw.errors import ConfigError

OPENAI_PUBLIC_URL = "https://api.openai.com/v1"
SEED_GATEWAY_URL = "https://gateway.ai.vercel.app/v1"
Route = Literal["gateway", "direct"]
Source = Literal["flag", "env", ".env", "default"]


def _env(name: str) -> Any:
    """A field read from exactly this variable name, whatever the prefix."""
    return AliasChoices(name)


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("aigw", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AIGW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    # -- the seed's variables ------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str = Field(OPENAI_PUBLIC_URL, validation_alias=_env("OPENAI_BASE_URL"))
    ai_gateway_url: str = Field(SEED_GATEWAY_URL, validation_alias=_env("AI_GATEWAY_URL"))
    gateway_api_key: SecretStr | None = Field(None, validation_alias=_env("GATEWAY_API_KEY"))
    gateway_api_key_next: SecretStr | None = Field(
        None, validation_alias=_env("GATEWAY_API_KEY_NEXT")
    )
    gateway_api_keys: SecretStr | None = Field(None, validation_alias=_env("GATEWAY_API_KEYS"))
    # The seed's rollback switch. Default on: aigw is the console for gateway setups.
    use_ai_gateway: bool = Field(True, validation_alias=_env("USE_AI_GATEWAY"))
    supabase_url: str | None = Field(None, validation_alias=_env("SUPABASE_URL"))
    supabase_service_role_key: SecretStr | None = Field(
        None, validation_alias=_env("SUPABASE_SERVICE_ROLE_KEY")
    )
    supabase_db_url: SecretStr | None = Field(None, validation_alias=_env("SUPABASE_DB_URL"))
    database_url: SecretStr | None = Field(None, validation_alias=_env("DATABASE_URL"))

    # -- aigw's own (AIGW_*) ---------------------------------------------------------------
    home: Path = Field(default_factory=default_home)
    sql_dir: Path | None = None  # AIGW_SQL_DIR: migrations folder; default: sql/ of the checkout
    gateway_key_header: str = "x-vercel-ai-gateway-key"
    debug: bool = False
    user_id: str | None = None
    timeout: float = Field(60.0, gt=0, description="HTTP timeout per attempt, seconds")
    check_id_prefixes: bool = True
    # logging (issue "Every call logged")
    log_payloads: bool = False
    payload_max_bytes: int = Field(16_384, ge=256)
    redact_patterns: list[str] = Field(default_factory=list)
    sync_budget: float = Field(2.0, ge=0, description="seconds a command may spend syncing logs")
    # resilience
    max_retries: int = Field(3, ge=0, le=20)
    retry_budget: float = Field(30.0, ge=0)
    rate_limit: str | None = None
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown: float = Field(30.0, gt=0)
    cache_ttl: float = Field(300.0, ge=0)
    # metrics: {"model": [usd_per_1M_input, usd_per_1M_output]} overriding shipped defaults
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @field_validator("ai_gateway_url", "openai_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    # -- derived -------------------------------------------------------------------------
    @property
    def route(self) -> Route:
        return "gateway" if self.use_ai_gateway else "direct"

    @property
    def base_url(self) -> str:
        return self.ai_gateway_url if self.use_ai_gateway else self.openai_base_url

    @property
    def db_url(self) -> str | None:
        """The direct Postgres URL: SUPABASE_DB_URL, else DATABASE_URL."""
        secret = self.supabase_db_url or self.database_url
        return secret.get_secret_value() if secret else None

    @property
    def gateway_keys(self) -> list[str]:
        """Gateway keys in rotation order: current, next, then the comma-separated list."""
        keys: list[str] = []
        for secret in (self.gateway_api_key, self.gateway_api_key_next):
            if secret and secret.get_secret_value():
                keys.append(secret.get_secret_value())
        if self.gateway_api_keys:
            keys += [k.strip() for k in self.gateway_api_keys.get_secret_value().split(",")]
        return list(dict.fromkeys(k for k in keys if k))

    @property
    def state_db_path(self) -> Path:
        return self.home / "aigw.sqlite3"


def env_names(name: str) -> list[str]:
    """The variable names a field is read from."""
    field = Settings.model_fields[name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"AIGW_{name.upper()}"]


def load_settings(**flags: Any) -> Settings:
    """Settings from flags (None means "not given"), env and `.env`; bad values → exit 3."""
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        names = env_names(field) if field in Settings.model_fields else [field]
        raise ConfigError(
            f"invalid configuration {names[0]}: {first['msg']}",
            hint="check the environment and the .env file in the working folder",
        ) from None


def value_sources(settings: Settings, flags: dict[str, Any]) -> dict[str, Source]:
    """Where each value came from, following the same precedence as pydantic-settings."""
    from dotenv import dotenv_values

    env_file = Path(".env")
    dotenv = {k.upper() for k in dotenv_values(env_file)} if env_file.is_file() else set()
    environ = {k.upper() for k in os.environ}
    sources: dict[str, Source] = {}
    for name in Settings.model_fields:
        names = [n.upper() for n in env_names(name)]
        if flags.get(name) is not None:
            sources[name] = "flag"
        elif any(n in environ for n in names):
            sources[name] = "env"
        elif any(n in dotenv for n in names):
            sources[name] = ".env"
        else:
            sources[name] = "default"
    return sources


def mask(secret: SecretStr | str | None) -> str | None:
    """A secret shown as its last 4 characters only."""
    if secret is None:
        return None
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        return ""
    return "…" + value[-4:] if len(value) > 8 else "****"
