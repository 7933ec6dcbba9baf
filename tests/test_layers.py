"""Imports point down: commands → render/services → context → gateway, storage → settings,
errors; `aigw.common` is below them all and imports nothing from aigw outside itself.

A module may import its own package and any package of a lower layer, never one beside it or
above it. Imports made only for type checking count too: a type names what a layer knows.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

AIGW = Path(__file__).resolve().parent.parent / "aigw"

# Top first. Packages in one layer do not import each other.
LAYERS: list[set[str]] = [
    {"__main__"},
    {"entry"},
    {"cli"},
    {"commands", "boundary"},
    {"server"},  # the gateway server: wires the bridge, the dashboard and the gateway layers
    {"bridge", "dashboard"},
    {"render", "services"},
    {"context"},
    {"gateway", "storage", "sandbox"},
    {"redact"},
    {"settings"},
    {"durations"},
    {"errors"},
    {"common", "aigw"},  # `aigw` itself: the package's __init__ (its version)
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}

# Known exceptions, each with its reason; the list only shrinks.
ALLOWED: dict[tuple[str, str], str] = {
    # Type names only (under TYPE_CHECKING): the table is drawn from the report the metrics
    # service returns; nothing of the service runs.
    ("aigw.render.metrics_views", "aigw.services.metrics"): "the report's types",
}


def package_of(module: str) -> str:
    """`aigw.gateway.transports.cache` → `gateway`; `aigw` → `aigw`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(path: Path) -> set[str]:
    """The aigw modules a file imports, wherever the import stands (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "aigw" or name.startswith("aigw.")}


def module_name(path: Path) -> str:
    relative = path.relative_to(AIGW.parent).with_suffix("")
    parts = [p for p in relative.parts if p != "__init__"]
    return ".".join(parts)


def violations() -> list[str]:
    found = []
    for path in sorted(AIGW.rglob("*.py")):
        importer = module_name(path)
        own = package_of(importer)
        for imported in sorted(imports_of(path)):
            other = package_of(imported)
            if other == own or (importer, imported) in ALLOWED:
                continue
            if own not in RANK or other not in RANK or RANK[other] <= RANK[own]:
                found.append(f"{importer} imports {imported}")
    return found


def test_every_package_has_a_layer() -> None:
    packages = {package_of(module_name(p)) for p in AIGW.rglob("*.py")}
    assert packages - RANK.keys() == set()


def test_imports_point_down() -> None:
    assert violations() == []


def test_common_imports_nothing_from_aigw_outside_itself() -> None:
    for path in (AIGW / "common").rglob("*.py"):
        assert {package_of(m) for m in imports_of(path)} <= {"common"}, path


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from aigw.commands.runs import app\n")
    assert imports_of(module) == {"aigw.commands.runs"}
    assert RANK["commands"] < RANK["storage"]


def test_the_gateway_server_does_not_load_the_clis_http_library() -> None:
    # Every gateway worker would carry httpx2 for nothing: the server speaks aiohttp.
    probe = (
        "import sys\n"
        "import aigw.server.app, aigw.server.proxy, aigw.server.run, aigw.server.runtime\n"
        "print(sorted(m for m in ('httpx2', 'httpx', 'openai') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
