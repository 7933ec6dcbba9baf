"""The one typed configuration object, and where each of its values came from.

The seed's variables keep their own names (OPENAI_API_KEY, AI_GATEWAY_URL, …) so an app's
existing `.env` works unchanged; aigw's own settings live under the AIGW_ prefix.
Precedence, highest first: command-line flag, environment, `.env` in the working folder, default.
Variable names are case-insensitive; list and dict values are JSON.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from aigw.durations import DurationError, seconds_in
from aigw.errors import ConfigError

if TYPE_CHECKING:
    from urllib.parse import SplitResult

OPENAI_PUBLIC_URL = "https://api.openai.com/v1"
SEED_GATEWAY_URL = "https://gateway.ai.vercel.app/v1"
Route = Literal["gateway", "direct"]
Source = Literal["flag", "env", ".env", "default"]


class SecretStr:
    """A secret value: shown as stars by str/repr, read only through get_secret_value()."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __len__(self) -> int:  # an empty secret is falsy: `SUPABASE_DB_URL or DATABASE_URL`
        return len(self._value)

    def __repr__(self) -> str:
        return "SecretStr('**********')" if self._value else "SecretStr('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SettingError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("aigw", appauthor=False))


# -- converters: text (env, .env) or a Python value (flags, tests) → the field's type ------
def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid UTF-8 text") from None
    return value


def _secret(value: Any) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(_text(value))


MAX_URL_CHARS = 2048


def _split_url(text: str, *, secret: bool = False) -> SplitResult:
    """`text` as URL parts; ValueError saying what is wrong (without quoting a secret URL)."""
    if not text.isprintable() or any(c.isspace() for c in text):
        raise ValueError("must not contain spaces or control characters")
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError as exc:
        raise ValueError("is not a valid URL" + ("" if secret else f" ({exc})")) from None
    if not parts.hostname:
        raise ValueError("has no host")
    return parts


def _url(value: Any) -> str:
    text = _text(value)
    if not text.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    if len(text) > MAX_URL_CHARS:
        raise ValueError(f"must be at most {MAX_URL_CHARS:,} characters")
    _split_url(text)
    return text.rstrip("/")


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _state_url(value: Any) -> SecretStr:
    """A Redis URL (redis:// or rediss:// for TLS), kept as a secret: it may hold a password."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else _text(value).strip()
    if not text.startswith(("redis://", "rediss://")):
        raise ValueError("must be a redis:// or rediss:// URL")
    path = _split_url(text, secret=True).path.strip("/")
    if path and not path.isdigit():
        raise ValueError("must end in a database number (/0) or nothing")
    return SecretStr(text)


def _choice(*allowed: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = _text(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text

    return convert


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("Input should be a valid boolean, unable to interpret input")


def _number(
    kind: type, *, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"Input should be a valid {kind.__name__}")
        try:
            number = kind(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            name = "integer" if kind is int else "number"
            raise ValueError(f"Input should be a valid {name}") from None
        if kind is int and isinstance(value, float) and value != number:
            raise ValueError("Input should be a valid integer")
        if kind is float and not math.isfinite(number):
            raise ValueError("Input should be a finite number")
        if gt is not None and not number > gt:
            raise ValueError(f"Input should be greater than {gt:g}")
        if ge is not None and not number >= ge:
            raise ValueError(f"Input should be greater than or equal to {ge:g}")
        if le is not None and not number <= le:
            raise ValueError(f"Input should be less than or equal to {le:g}")
        return number

    return convert


def _duration(
    *, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> Callable[[Any], float]:
    """A duration setting: the flags' grammar (`90s`, `5m`, `1h30m`) or, from code, seconds."""
    in_range = _number(float, gt=gt, ge=ge, le=le)

    def convert(value: Any) -> float:
        if not isinstance(value, str):
            return in_range(value)
        try:
            return in_range(seconds_in(value))
        except DurationError as exc:
            raise ValueError(f"{exc}; {exc.hint}" if exc.hint else str(exc)) from None

    return convert


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    text = _text(value)
    if not text.strip():
        raise ValueError("must be a folder, not empty (an empty value would mean the current one)")
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    return Path(text).expanduser()


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise ValueError("Input should be valid JSON") from None


def _patterns(value: Any) -> list[str]:
    found = _json(value)
    if not isinstance(found, list) or not all(isinstance(p, str) for p in found):
        raise ValueError("Input should be a JSON list of strings")
    return list(found)


def _prices(value: Any) -> dict[str, tuple[float, float]]:
    found = _json(value)
    if not isinstance(found, dict):
        raise ValueError("Input should be a JSON object of model: [input, output] USD per 1M")
    prices = {}
    for model, pair in found.items():
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not all(isinstance(p, int | float) and not isinstance(p, bool) for p in pair)
        ):
            raise ValueError(f"{model}: expected [input, output] USD per 1M tokens")
        prices[str(model)] = (float(pair[0]), float(pair[1]))
    return prices


class FieldSpec(NamedTuple):
    """One setting: the variables it is read from, how text becomes its value, its default."""

    convert: Callable[[Any], Any]
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    variable: str | None = None  # the seed's own name; None: AIGW_<NAME>
    optional: bool = True  # None is a valid value (not given)
    aliases: tuple[str, ...] = ()  # earlier names still read, after the first


def _field(
    convert: Callable[[Any], Any], default: Any = None, variable: str | None = None, **kw: Any
) -> Any:
    """A field's FieldSpec (typed Any: it stands as the class attribute of the field's type)."""
    optional = default is None and "default_factory" not in kw
    return FieldSpec(convert, default, variable=variable, optional=optional, **kw)


class Settings:
    """The configuration, read once: flags (keyword arguments), environment, `.env`, default.

    Hand-written on purpose: pydantic-settings' imports and model building were a large share
    of every invocation (bench/metrics.py measures a whole command); this is a flat list of
    variables and converters. Each field is declared once, with its type and its FieldSpec, in
    the order `config show` lists them. The seed's variables keep their names.
    """

    openai_api_key: SecretStr | None = _field(_secret, None, "OPENAI_API_KEY")
    openai_base_url: str = _field(_url, OPENAI_PUBLIC_URL, "OPENAI_BASE_URL")
    ai_gateway_url: str = _field(_url, SEED_GATEWAY_URL, "AI_GATEWAY_URL")
    gateway_api_key: SecretStr | None = _field(_secret, None, "GATEWAY_API_KEY")
    gateway_api_key_next: SecretStr | None = _field(_secret, None, "GATEWAY_API_KEY_NEXT")
    gateway_api_keys: SecretStr | None = _field(_secret, None, "GATEWAY_API_KEYS")
    # The seed's rollback switch. Default on: aigw is the console for gateway setups.
    use_ai_gateway: bool = _field(_bool, True, "USE_AI_GATEWAY")
    supabase_url: str | None = _field(_text, None, "SUPABASE_URL")
    supabase_service_role_key: SecretStr | None = _field(_secret, None, "SUPABASE_SERVICE_ROLE_KEY")
    supabase_db_url: SecretStr | None = _field(_secret, None, "SUPABASE_DB_URL")
    database_url: SecretStr | None = _field(_secret, None, "DATABASE_URL")
    # aigw's own (AIGW_*)
    home: Path = _field(_path, default_factory=default_home)
    # the migrations folder; default: the ones shipped in the package
    sql_dir: Path | None = _field(_path)
    gateway_key_header: str = _field(_text, "x-vercel-ai-gateway-key")
    # `aigw gateway serve` (docs/gateway.md)
    # replaces the client's Authorization upstream
    upstream_api_key: SecretStr | None = _field(_secret)
    # sent upstream in the key header, rotated on 401
    upstream_gateway_keys: SecretStr | None = _field(_secret)
    key_rate_limit: str | None = _field(_text)  # per gateway key, e.g. 600/min
    user_id_header: str = _field(_text, "x-aigw-user-id")
    # One body cap: a request body the gateway accepts, and any answer's body (CLI or
    # gateway), counted after decompression.
    max_body_bytes: int = _field(
        _number(int, ge=1024, le=1 << 40), 32 * 1024 * 1024, aliases=("AIGW_MAX_RESPONSE_BYTES",)
    )
    drain_timeout: float = _field(_duration(ge=0), 30.0)
    # a client's request line and headers must arrive within it (slowloris); idle keep-alive too
    header_timeout: float = _field(_duration(gt=0, le=3600), 15.0)
    commit_window: float = _field(_duration(gt=0, le=10), 0.05)
    sync_interval: float = _field(_duration(gt=0), 5.0)
    debug: bool = _field(_bool, False)
    user_id: str | None = _field(_text)
    timeout: float = _field(_duration(gt=0, le=86_400), 60.0)  # one attempt, end to end
    check_id_prefixes: bool = _field(_bool, True)
    # logging
    log_payloads: bool = _field(_bool, False)
    payload_max_bytes: int = _field(_number(int, ge=256), 16_384)
    redact_patterns: list[str] = _field(_patterns, default_factory=list)
    sync_budget: float = _field(_duration(ge=0), 2.0)  # seconds a command may spend syncing
    # resilience
    max_retries: int = _field(_number(int, ge=0, le=20), 3)
    retry_budget: float = _field(_duration(ge=0), 30.0)
    rate_limit: str | None = _field(_text)
    breaker_failures: int = _field(_number(int, ge=1), 5)
    breaker_cooldown: float = _field(_duration(gt=0), 30.0)
    cache_ttl: float = _field(_duration(ge=0), 300.0)
    # shared state across machines (docs/scaling.md)
    # redis:// or rediss://; unset: the SQLite file in home
    state_url: SecretStr | None = _field(_state_url)
    state_timeout: float = _field(_duration(gt=0, le=10), 0.1)  # per Redis call
    rate_limit_fallback: str = _field(_choice("fail-open", "fail-closed"), "fail-open")
    # metrics: {"model": [usd_per_1M_input, usd_per_1M_output]} overriding shipped defaults
    prices: dict[str, tuple[float, float]] = _field(_prices, default_factory=dict)

    def __init__(self, **given: Any):
        unknown = set(given) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        environ = {k.upper(): v for k, v in os.environ.items()}
        dotenv = read_dotenv()
        for name, spec in FIELDS.items():
            if name in given:
                value = given[name]
            else:
                value = _lookup(env_names(name), environ, dotenv)
                if value is None:
                    value = spec.default_factory() if spec.default_factory else spec.default
                    object.__setattr__(self, name, value)
                    continue
            if value is None:
                if not spec.optional:
                    raise SettingError(name, "Input should not be None")
            else:
                try:
                    value = spec.convert(value)
                except ValueError as exc:
                    raise SettingError(name, str(exc)) from None
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in FIELDS)
        return f"Settings({shown})"

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


FIELDS: dict[str, FieldSpec] = {
    name: spec for name, spec in vars(Settings).items() if isinstance(spec, FieldSpec)
}


def env_names(name: str) -> list[str]:
    """The variable names a field is read from."""
    spec = FIELDS[name]
    return [spec.variable or f"AIGW_{name.upper()}", *spec.aliases]


def read_dotenv(path: Path = Path(".env")) -> dict[str, str]:
    """`.env` in the working folder, names upper-cased (names are case-insensitive)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k.upper(): v for k, v in dotenv_values(path).items() if v is not None}


def _lookup(names: list[str], *sources: dict[str, str]) -> str | None:
    for source in sources:
        for name in names:
            if name in source:
                return source[name]
    return None


# The settings a root flag sets: a bad value given there is a usage error (exit 2), not a
# configuration error (exit 3).
FLAG_NAMES = {"ai_gateway_url": "--gateway-url", "home": "--home", "use_ai_gateway": "--direct"}


def load_settings(**flags: Any) -> Settings:
    """Settings from flags (None means "not given"), env and `.env`; bad values → exit 3
    (exit 2 when the bad value came from a flag)."""
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        return Settings(**given)
    except SettingError as exc:
        if exc.field in given:
            from aigw.errors import UsageError

            flag = FLAG_NAMES.get(exc.field, exc.field)
            raise UsageError(f"invalid {flag}: {exc}") from None
        raise ConfigError(
            f"invalid configuration {env_names(exc.field)[0]}: {exc}",
            hint="check the environment and the .env file in the working folder",
        ) from None


def value_sources(settings: Settings, flags: dict[str, Any]) -> dict[str, Source]:
    """Where each value came from, following the same precedence as Settings."""
    dotenv = set(read_dotenv())
    environ = {k.upper() for k in os.environ}
    sources: dict[str, Source] = {}
    for name in FIELDS:
        names = env_names(name)
        if flags.get(name) is not None:
            sources[name] = "flag"
        elif any(n in environ for n in names):
            sources[name] = "env"
        elif any(n in dotenv for n in names):
            sources[name] = ".env"
        else:
            sources[name] = "default"
    return sources


_CONNINFO_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_QUERY_VALUE = re.compile(r"([?&;][^=&;#]*=)[^&;#]*")


def mask_url(url: str) -> str:
    """A URL as aigw prints or logs it: the userinfo's password (and, outside database URLs,
    a user name that may be a token) and every query value replaced by `****`. The one
    function for every URL shown: gateway and OpenAI base URLs, Supabase and database URLs
    (a `key=value` connection string gets its password masked). Never raises."""
    if "://" not in url:
        return _CONNINFO_PASSWORD.sub(r"\1****", url)
    scheme, _, rest = url.partition("://")
    cut = min((rest.find(c) for c in "/?#" if c in rest), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        userinfo, _, hostport = authority.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        keep_user = scheme.lower().startswith("postgres") and user
        shown = (user if keep_user else "****") + (":****" if has_password and keep_user else "")
        authority = f"{shown}@{hostport}"
    path, hash_mark, fragment = tail.partition("#")
    path = _QUERY_VALUE.sub(r"\1****", path)
    return f"{scheme}://{authority}{path}{hash_mark}{fragment}"


def mask(secret: SecretStr | str | None) -> str | None:
    """A secret shown as its last 4 characters only."""
    if secret is None:
        return None
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        return ""
    return "…" + value[-4:] if len(value) > 8 else "****"
