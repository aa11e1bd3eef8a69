"""SQL fragments the query modules share."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

#: The id of the name given as the next parameter (NULL when no build has it: no row matches).
NAME_ID = "(SELECT id FROM names WHERE name = ?)"


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether `table` (a name from the query modules, not user input) has `column`."""
    return column in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def in_chunks(conn: sqlite3.Connection, sql: str, ids: Iterable[int | str]) -> list[tuple]:
    """Rows of `sql` (with one `{}` for a list of placeholders) for `ids`, 500 at a time."""
    keys = sorted(set(ids))
    out: list[tuple] = []
    for k in range(0, len(keys), 500):
        chunk = keys[k : k + 500]
        out.extend(conn.execute(sql.format(",".join("?" * len(chunk))), chunk))
    return out


def module_join(alias: str, conn: sqlite3.Connection) -> str:
    """Joins that give the name of the module of row `alias` (a view with
    module_name_id, or before schema 9 a table with module_id) as `mn.name`: NULL for vmlinux."""
    if has_column(conn, "functions", "module_name_id"):
        return f"LEFT JOIN names mn ON mn.id = {alias}.module_name_id"
    return f"LEFT JOIN modules m ON m.id = {alias}.module_id LEFT JOIN names mn ON mn.id = m.name_id"


def module_name(alias: str, conn: sqlite3.Connection) -> str:
    """SQL: the module name of `alias` (NULL: vmlinux), or NULL before schema 5."""
    if has_column(conn, "functions", "module_name_id"):
        return f"(SELECT mn.name FROM names mn WHERE mn.id = {alias}.module_name_id)"
    if not has_column(conn, "functions", "module_id"):
        return "NULL"
    return (
        f"(SELECT mn.name FROM modules m JOIN names mn ON mn.id = m.name_id WHERE m.id = {alias}.module_id)"
    )


def facts_only_in(kind: str) -> str:
    """SQL: the rows of <kind>_facts that build ? has and build ? lacks (parameters:
    the other build, then the build), as `f` (docs/storage.md): a set difference of
    the two builds' membership bitmaps that reads only the blocks where they differ."""
    return (
        f"(SELECT a.block, a.bits & ~coalesce(b.bits, 0) AS bits FROM {kind}_members a"
        f"  LEFT JOIN {kind}_members b ON b.build_id = ? AND b.block = a.block"
        f"  WHERE a.build_id = ? AND a.bits != coalesce(b.bits, 0)) d"
        f" JOIN {kind}_facts f ON f.id BETWEEN d.block * 64 AND d.block * 64 + 63 AND (d.bits >> (f.id & 63)) & 1"
    )
