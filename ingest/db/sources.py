"""The writer of build_sources: which source gave each kind of fact of a build
(ingest.origins.facts, docs/concepts.md#fact-sources)."""

from __future__ import annotations

import sqlite3

from ingest.model import Build


def write_sources(conn: sqlite3.Connection, build_pk: int, build: Build) -> None:
    """One row per kind of fact the build records a source (or NULL: unknown) for."""
    conn.executemany(
        "INSERT INTO build_sources (build_id, fact, source) VALUES (?,?,?)",
        [(build_pk, fact, source) for fact, source in sorted(build.sources.items())],
    )
