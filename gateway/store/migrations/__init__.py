"""Numbered SQL migrations per backend, applied in order at start-up."""

from __future__ import annotations

from importlib import resources


def migration_scripts(dialect: str) -> list[tuple[int, str]]:
    folder = resources.files("gateway.store.migrations").joinpath(dialect)
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(out)
