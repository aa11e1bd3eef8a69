"""A copy of the checkout's sources as the sdist holds them: what a wheel or the
GitHub action (action.yml) is installed from in the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support import ROOT

#: What the sdist holds (MANIFEST.in); the wheel is built from a copy of these.
SOURCES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "schema.sql",
    "metadata.yml",
    "templates",
    "plugins",
    "ingest",
)


def copy_sources(dest: Path) -> Path:
    """SOURCES copied into dest (made when missing), without bytecode; returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, dest / name)
    return dest
