"""Request validation for the gateway server, with the CLI's rules (services/requests.py).

The same limits and ID prefixes the CLI checks before sending are checked on the application's
requests before they are forwarded: IDs in the path, the body's lengths, counts and ranges, and
a list's `limit`. Questions of type (a message's content given as a list of parts, fields the
CLI never sends) are left to the upstream: the gateway refuses only what the API would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import ConfigDict, ValidationError

from aigw.errors import UsageError
from aigw.gateway.endpoints import Endpoint
from aigw.services.requests import (
    ID_PREFIXES,
    AssistantCreate,
    AssistantFields,
    ListQuery,
    MessageCreate,
    RequestModel,
    RunCreate,
    ThreadCreate,
    ThreadUpdate,
    ToolOutputs,
    check_id,
)


def _lenient(model: type[RequestModel]) -> type[RequestModel]:
    """`model`, ignoring fields it does not know: they are the upstream's to judge, and a
    body with one (`stream`, say) then builds no ValidationError (costly on a cold start)."""
    config = ConfigDict(**{**model.model_config, "extra": "ignore"})
    return type(model.__name__, (model,), {"model_config": config, "__module__": __name__})


_CLI_MODELS: dict[str, type[RequestModel]] = {
    "POST /v1/assistants": AssistantCreate,
    "POST /v1/assistants/{assistant_id}": AssistantFields,
    "POST /v1/threads": ThreadCreate,
    "POST /v1/threads/{thread_id}": ThreadUpdate,
    "POST /v1/threads/{thread_id}/messages": MessageCreate,
    "POST /v1/threads/{thread_id}/runs": RunCreate,
    "POST /v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs": ToolOutputs,
}
BODY_MODELS = {name: _lenient(model) for name, model in _CLI_MODELS.items()}
# Type questions are the upstream's (see the module docstring).
_LEFT_TO_UPSTREAM = {
    "extra_forbidden",
    "string_type",
    "dict_type",
    "list_type",
    "model_type",
    "literal_error",
}
_CODES = {"missing": "missing_required_parameter", "string_too_long": "string_above_max_length"}


class Problem(NamedTuple):
    message: str
    param: str | None
    code: str


def validation_problem(
    method: str, endpoint: Endpoint, body: Any, query: Mapping[str, str], *, prefixes: bool
) -> Problem | None:
    """What is wrong with a request, in the API's words; None when nothing is."""
    for name, value in endpoint.ids.items():
        if name in ID_PREFIXES:
            try:
                check_id(value, name, enabled=prefixes)
            except UsageError as exc:
                return Problem(exc.message[:1].upper() + exc.message[1:] + ".", name, "invalid_id")
    model = BODY_MODELS.get(f"{method} {endpoint.template}")
    if model is not None and isinstance(body, dict):
        return _first_problem(model, body)
    if method == "GET" and endpoint.listing and "limit" in query:
        return _first_problem(ListQuery, {"limit": query["limit"]})
    return None


def _first_problem(model: type[RequestModel], values: dict[str, Any]) -> Problem | None:
    try:
        model.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] in _LEFT_TO_UPSTREAM:
                continue
            param = ".".join(str(part) for part in error["loc"])
            if error["type"] == "missing":
                message = f"Missing required parameter: '{param}'."
            else:
                message = f"Invalid '{param}': {error['msg'].rstrip('.')}."
            return Problem(message, param, _CODES.get(error["type"], "invalid_value"))
    return None
