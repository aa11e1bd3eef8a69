"""Storing one build: one transaction that calls each table family's writer,
parents before children, so a build lands whole or not at all."""

from __future__ import annotations

import sqlite3

from ingest.db.builds import write_build_row, write_stored_counts
from ingest.db.counts import store_counts
from ingest.db.delete import clear_build, collect_unused
from ingest.db.functions import CodeRows, number_names
from ingest.db.modules import ModuleRows
from ingest.db.sources import write_sources
from ingest.db.sql import Lookups, foreign_keys_unchecked, transaction
from ingest.db.surfaces import insert_surfaces, insert_variables, surface_rows
from ingest.db.symbols import insert_symbols
from ingest.db.types import TypedefRows, TypeRows
from ingest.db.values import choose_value_base
from ingest.errors import AlreadyStored
from ingest.model import Build
from ingest.queries import builds as stored


def store_build(
    conn: sqlite3.Connection, build: Build, seconds: float, replace: bool = False, label: str | None = None
) -> int:
    """Insert the whole build in one transaction; returns its id. With `replace`,
    a build of the same build-id is replaced in place (it keeps its id).

    New names, texts, prototypes and layouts are numbered in a fixed order (the
    order of the steps below), so the same input always gives the same rows."""
    with foreign_keys_unchecked(conn), transaction(conn):
        old = stored.find_build(conn, build.info.build_id)
        if old is not None:
            if not replace:
                raise AlreadyStored(f"build {build.info.build_id} is already stored as {old.name}")
            clear_build(conn, old.id)  # what the old version alone used goes at the end
        build_pk = write_build_row(conn, build, seconds, old=old, label=label)
        choose_value_base(conn, build_pk)
        write_sources(conn, build_pk, build)
        lookups = Lookups.load(conn)
        modules = ModuleRows(conn, build, build_pk, lookups.names)
        number_names(build, lookups)
        code = CodeRows(conn, build, build_pk, lookups)
        types = TypeRows(conn, build, lookups)
        typedefs = TypedefRows(build, build_pk, lookups, types.layouts)
        write_stored_counts(conn, build_pk, build, n_structs=types.n_structs)
        surfaces = surface_rows(build, lookups, types.layouts)
        lookups.flush()
        code.prototypes.flush()
        types.layouts.flush()
        modules.insert(conn)
        code.insert_instances(conn)
        code.insert_callers(conn)
        insert_symbols(conn, build, build_pk, lookups)
        code.insert_functions(conn)
        types.insert(conn, build_pk)
        typedefs.insert(conn)
        insert_surfaces(conn, build_pk, surfaces)
        insert_variables(conn, build, build_pk, lookups)
        if old is not None:
            collect_unused(conn)
        store_counts(conn)
    return build_pk
