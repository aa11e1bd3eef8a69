"""Reads of the fact sources of builds (table build_sources, ingest.origins.facts)."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple


class StoredIdentity(NamedTuple):
    """What an upgrade keeps of a stored build when the richer input does not say it."""

    has_dwarf: bool
    distro: str | None
    version: str | None
    flavor: str | None


def stored_identity(conn: sqlite3.Connection, build: int) -> StoredIdentity:
    """The identity and DWARF presence of stored build `build`."""
    row = conn.execute(
        "SELECT has_dwarf, distro, version, flavor FROM builds WHERE id = ?", (build,)
    ).fetchone()
    return StoredIdentity(bool(row[0]), row[1], row[2], row[3])


def sources(conn: sqlite3.Connection, build: int) -> dict[str, str | None]:
    """Kind of fact -> its source for `build` (empty: ingested before sources were recorded)."""
    return dict(conn.execute("SELECT fact, source FROM build_sources WHERE build_id = ?", (build,)))


def config(conn: sqlite3.Connection, build: int) -> dict[str, str]:
    """The stored kernel config of `build`: CONFIG_X -> value."""
    return dict(
        conn.execute(
            "SELECT n.name, c.value FROM config_options c JOIN names n ON n.id = c.name_id WHERE c.build_id = ?",
            (build,),
        )
    )
