"""Request-body checks that answer 400 in the API's words."""

from __future__ import annotations

from typing import Any

from aigw.sandbox.http import ApiError


def required(body: dict[str, Any], name: str, prefix: str = "") -> Any:
    """`body[name]`, or 400; `prefix` names where a nested body sits (`messages[0].`)."""
    if body.get(name) in (None, ""):
        raise ApiError(
            400,
            f"Missing required parameter: '{prefix}{name}'.",
            param=f"{prefix}{name}",
            code="missing_required_parameter",
        )
    return body[name]


def string(body: dict[str, Any], name: str, max_length: int) -> str | None:
    """The string field, at most `max_length` long; 400 otherwise; None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(
            400, f"Invalid type for '{name}': expected a string.", param=name, code="invalid_type"
        )
    if len(value) > max_length:
        raise ApiError(
            400,
            f"Invalid '{name}': string too long. Expected a string with maximum length "
            f"{max_length}, but got a string with length {len(value)} instead.",
            param=name,
            code="string_above_max_length",
        )
    return value


def number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    """The number field, from `low` to `high`; 400 otherwise; None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(
            400,
            f"Invalid '{name}': expected a number between {low} and {high}.",
            param=name,
            code="decimal_out_of_range",
        )
    return float(value)


def metadata(body: dict[str, Any], current: dict[str, str] | None = None) -> dict[str, str]:
    """The metadata the body sets, over `current` (16 pairs at most, as the API)."""
    value = body.get("metadata")
    if value is None:
        return dict(current or {})
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid type for 'metadata': expected an object.", param="metadata")
    if len(value) > 16:
        raise ApiError(
            400,
            "Invalid 'metadata': too many properties. Expected at most 16.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, item in value.items():
        if len(key) > 64 or not isinstance(item, str) or len(item) > 512:
            raise ApiError(
                400,
                f"Invalid 'metadata.{key}': keys ≤ 64 and string values ≤ 512 characters.",
                param=f"metadata.{key}",
            )
    return dict(value)


def tools(body: dict[str, Any], current: list[Any] | None = None) -> list[dict[str, Any]]:
    """The tools the body sets, checked; `current` when absent."""
    value = body.get("tools")
    if value is None:
        return list(current or [])
    if not isinstance(value, list) or len(value) > 128:
        raise ApiError(
            400, "Invalid 'tools': expected an array of at most 128 tools.", param="tools"
        )
    for index, tool in enumerate(value):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in ("code_interpreter", "file_search", "function"):
            raise ApiError(
                400, f"Invalid value for 'tools[{index}].type'.", param=f"tools[{index}].type"
            )
        if kind == "function" and not (tool.get("function") or {}).get("name"):
            raise ApiError(
                400,
                f"Missing required parameter: 'tools[{index}].function.name'.",
                param=f"tools[{index}].function.name",
            )
    return value
