"""Deleting builds: a build's own rows, its group memberships and stored
differences, then the shared contents (prototypes, layouts, names, paths and
texts) that no build left in the database uses. Which columns use a shared
table is read from the declared foreign keys, so a table added later is
covered without a change here."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from ingest.db.changes import delete_pairs_of
from ingest.db.counts import NULLS, SUMMARY_COUNTS
from ingest.db.facts import clear_members, collect_unused_facts
from ingest.db.search import build_search_index
from ingest.db.sql import foreign_keys_unchecked, transaction

#: Shared tables, in the order they are collected: prototypes and layouts
#: first, since what they refer to (type texts, names) is freed with them.
SHARED = ("prototypes", "layouts", "names", "paths", "type_texts", "texts")

#: The rows that belong to one shared row and go with it: table -> (its column naming the owner, owner).
PARTS = {
    "prototype_params": ("prototype_id", "prototypes"),
    "struct_fields": ("layout_id", "layouts"),
    "enum_values": ("layout_id", "layouts"),
}


class Reference(NamedTuple):
    """A column that refers to a shared table's id."""

    table: str
    column: str


def delete_build(conn: sqlite3.Connection, build: int) -> dict[str, int]:
    """Remove one build, in one transaction: its rows, its places in groups,
    the stored differences of the pairs it is in, and the shared rows only it
    used. Returns how many shared rows were removed, per table."""
    return delete_builds(conn, [build])


def delete_builds(conn: sqlite3.Connection, builds: Iterable[int]) -> dict[str, int]:
    """delete_build of several builds, in one transaction, the shared rows collected once."""
    with foreign_keys_unchecked(conn), transaction(conn):
        for build in builds:
            clear_build(conn, build)
            delete_pairs_of(conn, build)
            conn.execute("DELETE FROM group_members WHERE build_id = ?", (build,))
            conn.execute("DELETE FROM builds WHERE id = ?", (build,))
        removed = collect_unused(conn)
    if _has_search_index(conn):
        build_search_index(conn)  # it names the removed names
    return removed


def clear_build(conn: sqlite3.Connection, build: int) -> None:
    """Remove one build's facts but keep its builds row, so groups that name it
    stay valid (shared lookups, layouts and prototypes stay too)."""
    clear_members(conn, build)
    for table in ("build_sources", "modules"):  # modules last: the facts' views refer to it
        conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (build,))
    conn.execute(f"UPDATE builds SET ({', '.join(SUMMARY_COUNTS)}) = ({NULLS}) WHERE id = ?", (build,))


def collect_unused(conn: sqlite3.Connection) -> dict[str, int]:
    """Delete the shared rows no row refers to any more (with their parts)."""
    removed = collect_unused_facts(conn)
    references = _references(conn)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS kernsurf_used (id INTEGER PRIMARY KEY)")
    try:
        for table in SHARED:
            conn.execute("DELETE FROM temp.kernsurf_used")
            for ref in references.get(table, ()):
                conn.execute(
                    f"INSERT OR IGNORE INTO temp.kernsurf_used SELECT {ref.column} FROM {ref.table}"
                    f" WHERE {ref.column} IS NOT NULL"
                )
            if table == "layouts":
                _add_held_layouts(conn)
            unused = f"SELECT id FROM {table} WHERE id NOT IN (SELECT id FROM temp.kernsurf_used)"
            for part, (column, owner) in PARTS.items():
                if owner == table:
                    conn.execute(f"DELETE FROM {part} WHERE {column} IN ({unused})")
            removed[table] = conn.execute(f"DELETE FROM {table} WHERE id IN ({unused})").rowcount
    finally:
        conn.execute("DROP TABLE temp.kernsurf_used")
    return removed


def _add_held_layouts(conn: sqlite3.Connection) -> None:
    """The layouts the used layouts' members hold, and theirs, to the used set."""
    conn.execute(
        "INSERT OR IGNORE INTO temp.kernsurf_used"
        " WITH RECURSIVE held(id) AS (SELECT id FROM temp.kernsurf_used"
        " UNION SELECT f.type_layout_id FROM struct_fields f JOIN held ON f.layout_id = held.id"
        " WHERE f.type_layout_id IS NOT NULL)"
        " SELECT id FROM held"
    )


def _references(conn: sqlite3.Connection) -> dict[str, list[Reference]]:
    """Shared table -> the columns that refer to it, but its own parts' owner column
    (struct_fields' references to the layouts its members hold are followed separately)."""
    found: dict[str, list[Reference]] = {}
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in conn.execute(f'PRAGMA foreign_key_list("{table}")'):
            target, column = row[2], row[3]
            if target not in SHARED or PARTS.get(table, ("", ""))[1] == target:
                continue
            found.setdefault(target, []).append(Reference(table=table, column=column))
    return found


def _has_search_index(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM name_search LIMIT 1").fetchone() is not None
