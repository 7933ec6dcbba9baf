"""The effective configuration as data, secrets masked to their last 4 characters."""

from __future__ import annotations

from typing import Any

from aigw.settings import FIELDS, SecretStr, Settings, env_names, mask, mask_url, value_sources


def config_report(settings: Settings, flags: dict[str, Any]) -> dict[str, Any]:
    sources = value_sources(settings, flags)
    rows = []
    for name in FIELDS:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and name == "state_url":
            shown: Any = mask_url(value.get_secret_value())  # the host stays readable
        elif isinstance(value, SecretStr):
            shown = mask(value)
        elif isinstance(value, str) and "://" in value:
            shown = mask_url(value)
        elif value is None or isinstance(value, bool | int | float | str | list | dict):
            shown = value
        else:
            shown = str(value)
        rows.append(
            {
                "variable": env_names(name)[0],
                "value": shown,
                "source": sources[name],
                "secret": isinstance(value, SecretStr),
            }
        )
    return {
        "route": settings.route,
        "base_url": mask_url(settings.base_url),
        "gateway_key_header": settings.gateway_key_header if settings.route == "gateway" else None,
        "settings": rows,
    }
