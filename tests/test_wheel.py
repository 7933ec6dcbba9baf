"""An installed wheel carries its migrations: `aigw migrate` works outside the checkout.

`pip install .` builds this same wheel and installs it, so it is covered too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from importlib.metadata import version
from pathlib import Path

import pytest

from aigw.storage.migrations import discover

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
SKIP_IN_COPY = (".git", ".venv", "build", "*.egg-info", "__pycache__", "tests", "bench", "docs")


def backend_at_hand() -> bool:
    """setuptools new enough for pyproject.toml and `wheel`: a build without fetching them."""
    major = int(version("setuptools").split(".")[0])
    return major >= 68 and importlib.util.find_spec("wheel") is not None


def build_wheel(into: Path) -> Path:
    """The wheel of a copy of the checkout (a build writes build/ and *.egg-info beside it)."""
    source = into / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_IN_COPY))
    isolation = ["--no-build-isolation"] if backend_at_hand() else []
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", into, source],
        check=True,
        capture_output=True,
        timeout=50,
    )
    return next(into.glob("aigw-*.whl"))


def venv_with(wheel: Path, where: Path) -> Path:
    """A fresh venv with the wheel installed; its dependencies seen from this environment."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel],
        check=True,
        capture_output=True,
        timeout=50,
    )
    # After the install, so pip never sees this checkout's editable aigw. A directory named in a
    # .pth file is added to sys.path without running its own .pth files: the editable finder of
    # this environment stays out, and `aigw` is the installed one.
    site = Path(sysconfig.get_paths(vars={"base": str(where), "platbase": str(where)})["purelib"])
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return where / "bin"


def test_an_installed_wheel_migrates_a_database_from_outside_the_checkout(
    tmp_path: Path, fresh_db: str
) -> None:
    wheel = build_wheel(tmp_path)
    bin_dir = venv_with(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    where = subprocess.run(
        [bin_dir / "python", "-c", "import aigw; print(aigw.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert where.startswith(str(tmp_path / "venv")), where

    env = {k: v for k, v in os.environ.items() if k != "AIGW_SQL_DIR"}
    done = subprocess.run(
        [bin_dir / "aigw", "migrate", "--db-url", fresh_db, "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    applied = [a["name"] for a in json.loads(done.stdout)["applied"]]
    assert applied == [m.label for m in discover()]
