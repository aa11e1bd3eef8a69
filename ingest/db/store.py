"""Storing one build: one transaction that calls each table family's writer,
parents before children, so a build lands whole or not at all."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ingest.db.builds import write_build_row, write_stored_counts
from ingest.db.counts import NULLS, SUMMARY_COUNTS, store_counts
from ingest.db.functions import CodeRows, number_names
from ingest.db.modules import ModuleRows
from ingest.db.sources import write_sources
from ingest.db.sql import Lookups, transaction
from ingest.db.surfaces import insert_surfaces, surface_rows
from ingest.db.symbols import insert_symbols, symbol_rows
from ingest.db.types import TypedefRows, TypeRows
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
    with _foreign_keys_unchecked(conn), transaction(conn):
        old = stored.find_build(conn, build.info.build_id)
        if old is not None:
            if not replace:
                raise AlreadyStored(f"build {build.info.build_id} is already stored as {old.name}")
            clear_build(conn, old.id)
        build_pk = write_build_row(conn, build, seconds, old=old, label=label)
        write_sources(conn, build_pk, build)
        lookups = Lookups.load(conn)
        modules = ModuleRows(conn, build, build_pk, lookups.names)
        number_names(build, lookups)
        code = CodeRows(conn, build, build_pk, lookups, modules.ids)
        types = TypeRows(conn, build, build_pk, lookups, modules.ids)
        typedefs = TypedefRows(build, build_pk, lookups, types.layouts)
        write_stored_counts(conn, build_pk, build, n_structs=types.n_structs)
        surfaces = surface_rows(build, build_pk, lookups, types.layouts, modules.ids)
        lookups.flush()
        code.prototypes.flush()
        types.layouts.flush()
        modules.insert(conn)
        # A database holding fewer instances than this build adds (its first builds): indexes after.
        with _indexes_made_after(
            conn, ("instances", "symbols", "functions"), code.first - 1 < len(build.instances)
        ):
            code.insert_instances(conn)
            code.insert_callers(conn)
            insert_symbols(conn, symbol_rows(build, build_pk, lookups, modules.ids))
            code.insert_functions(conn)
        types.insert(conn)
        typedefs.insert(conn)
        insert_surfaces(conn, surfaces)
        store_counts(conn)
    return build_pk


def clear_build(conn: sqlite3.Connection, build: int) -> None:
    """Remove one build's facts but keep its builds row, so groups that name it
    stay valid (shared lookups, layouts and prototypes stay too)."""
    conn.execute(
        "DELETE FROM callers WHERE callee_id IN (SELECT id FROM instances WHERE build_id = ?)", (build,)
    )
    for table in (
        "functions",
        "types",
        "symbols",
        "instances",
        "tracepoints",
        "syscalls",
        "lsm_hooks",
        "kfuncs",
        "config_options",
        "variables",
        "typedefs",
        "build_sources",
        "modules",  # last: the rows above refer to it
    ):
        conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (build,))
    conn.execute(f"UPDATE builds SET ({', '.join(SUMMARY_COUNTS)}) = ({NULLS}) WHERE id = ?", (build,))


def delete_build(conn: sqlite3.Connection, build: int) -> None:
    """Remove one build entirely."""
    clear_build(conn, build)
    conn.execute("DELETE FROM builds WHERE id = ?", (build,))


@contextmanager
def _foreign_keys_unchecked(conn: sqlite3.Connection) -> Iterator[None]:
    """Foreign keys not checked row by row: `store_build` numbers every row it
    inserts itself, parents before children, and the checks would cost a third
    of its time (millions of rows with modules). The tests run PRAGMA
    foreign_key_check over what it stores. (SQLite ignores the PRAGMA inside a
    transaction: then the checks stay on.)"""
    was = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if was else 'OFF'}")


@contextmanager
def _indexes_made_after(conn: sqlite3.Connection, tables: Sequence[str], bulk: bool) -> Iterator[None]:
    """With `bulk`, the tables' secondary indexes (kernsurf's and any a user
    added) are dropped for the inserts and made again after them: sorting a
    table's rows once per index beats inserting millions of entries into it
    one at a time in random order (3-4 s of a 6.1 build with its modules).
    Inside store_build's transaction: a failure rolls the drops back too."""
    saved: list[tuple[str, str]] = []
    if bulk:
        for table in tables:
            saved += conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                (table,),
            ).fetchall()
        for name, _ in saved:
            conn.execute(f'DROP INDEX "{name}"')
    yield
    for _, sql in saved:
        conn.execute(sql)
