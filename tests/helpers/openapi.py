"""Raw JSON bodies checked against a schema of one of OpenAI's OpenAPI documents.

The documents are copies of shared/reference/ kept in tests/data/ so the tests run wherever
the clone is. Raw bodies, not the SDK's parsed models, which forgive a lot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DATA = Path(__file__).parent.parent / "data"
ASSISTANTS_SPEC = DATA / "openai-assistants-openapi.json"
CHAT_SPEC = DATA / "openai-chat-completions-openapi.json"


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` (which the 3.1 document still uses) as JSON Schema.

    JSON Schema ignores `nullable`, so without this every null that the API really sends
    (`required_action`, `last_error`, `truncation_strategy`, …) would fail validation.
    """
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    marker = {"nullable": True}
    if marker in node.get("allOf", []):  # `allOf: [{$ref}, {nullable: true}]`
        rest = [member for member in node.pop("allOf") if member != marker]
        node["anyOf"] = [{"allOf": rest}, {"type": "null"}]
    node = {key: _nullable(value) for key, value in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def checker(spec: Path) -> Callable[[str, Any], None]:
    """`check(schema_name, body)`: fails the test with every mismatch listed."""
    document = _nullable(json.loads(spec.read_text()))
    registry: Registry = Registry().with_resource(
        "urn:openapi", Resource.from_contents(document, default_specification=DRAFT202012)
    )

    def check(schema_name: str, instance: Any) -> None:
        schema = {"$ref": f"urn:openapi#/components/schemas/{schema_name}"}
        validator = Draft202012Validator(schema, registry=registry)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
        assert not errors, f"{schema_name} does not match the spec:\n" + "\n".join(errors)

    return check
