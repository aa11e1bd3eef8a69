"""Upgrading a build in place (docs/concepts.md#fact-sources), decided before `store_build`.

A build first ingested from a poorer source (the running system, a BTF blob,
a BTFHub archive) whose ELF build-id a full debug image later shows is
replaced by that image's facts under the same id, so its groups and stored
diffs keep pointing at it. Facts the richer image lacks and the stored build
had (its config, its distro and version) are kept. A poorer input for a build
stored from a debug image is a no-op: nothing is ever downgraded.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ingest.model import Build
from ingest.queries import sources
from ingest.readers import elf


def may_upgrade(conn: sqlite3.Connection, build: int, path: Path) -> bool:
    """Whether the image at `path` may be richer than stored build `build`
    (it has DWARF, the stored one has not), without reading the image."""
    if sources.stored_identity(conn, build).has_dwarf:
        return False
    try:
        with open(path, "rb") as f:
            return elf.open_image(f).has(".debug_info")
    except (OSError, elf.ImageError, Exception):
        return False


def upgrade(conn: sqlite3.Connection, build: int, richer: Build) -> bool:
    """Whether `richer` upgrades stored build `build` (it has DWARF, the
    stored one has not); when it does, fill what `richer` does not know from
    the stored build (in place)."""
    stored = sources.stored_identity(conn, build)
    if stored.has_dwarf or not richer.info.has_dwarf:
        return False
    info = richer.info
    info.distro = info.distro or stored.distro
    info.version = info.version or stored.version
    info.flavor = info.flavor or stored.flavor
    if not richer.config:
        richer.config = sources.config(conn, build)
        was = sources.sources(conn, build).get("config")
        kept = f"{was or 'the stored config'} (kept from the build upgraded)"
        richer.sources["config"] = kept if richer.config else None
    return True
