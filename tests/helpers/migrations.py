"""Migrating a test database in one call."""

from __future__ import annotations

from pathlib import Path

from aigw.storage.migrations import apply


def apply_all(db_url: str, sql_dir: Path | None = None) -> list[str]:
    """Apply what is pending; the labels applied (`["0001_core"]`)."""
    return [a.name for a in apply(db_url, sql_dir).applied]
