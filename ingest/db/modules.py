"""The modules rows of a build being stored (docs/concepts.md#modules)."""

from __future__ import annotations

import sqlite3

from ingest.db.sql import Lookup, next_id
from ingest.model import Build


class ModuleRows:
    """A build's modules numbered (their names too), ready to insert."""

    def __init__(self, conn: sqlite3.Connection, build: Build, build_pk: int, names: Lookup):
        self.rows: list[tuple] = []
        free_id = next_id(conn, "modules")
        seen: set[str] = set()
        for m in build.modules or ():
            if m.name in seen:  # two files naming one module: the first file
                continue
            seen.add(m.name)
            depends = ",".join(m.depends) or None
            self.rows.append(
                (free_id, build_pk, names(m.name), m.path, m.license, m.description, depends)
                + (m.vermagic, m.size, m.error)
            )
            free_id += 1

    def insert(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO modules (id, build_id, name_id, path, license, description, depends, vermagic,"
            " size, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
            self.rows,
        )
