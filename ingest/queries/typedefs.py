"""Typedef reads (docs/concepts.md#typedefs): per build, what each named
typedef names, for `kernsurf check`, diffs and the type pages."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

_NAME_ID = "(SELECT id FROM names WHERE name = ?)"


class TypedefRow(NamedTuple):
    """One typedef of one build."""

    name: str
    target: str  # the type it names, as C prints it
    canon: str  # typedefs resolved
    kind: str  # what the target is: int, ptr, struct, "array int", ...
    size: int | None
    layout_id: int | None  # the struct/union/enum it resolves to (anonymous ones too)


_COLUMNS = (
    "n.name, t.text, c.text, d.kind, d.size, d.layout_id FROM typedefs d JOIN names n ON n.id = d.name_id"
    " JOIN type_texts t ON t.id = d.target_id JOIN type_texts c ON c.id = d.resolved_id"
)


def recorded(conn: sqlite3.Connection, build: int) -> bool:
    """Whether `build` recorded its typedefs (builds.n_typedefs set)."""
    if "n_typedefs" not in {row[1] for row in conn.execute("PRAGMA table_info(builds)")}:
        return False
    row = conn.execute("SELECT n_typedefs FROM builds WHERE id = ?", (build,)).fetchone()
    return row is not None and row[0] is not None


def typedefs(conn: sqlite3.Connection, build: int, name: str) -> list[TypedefRow]:
    """The typedefs named `name` in `build` (one, but for DWARF units that disagree)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} WHERE d.build_id = ? AND d.name_id = {_NAME_ID} ORDER BY t.text",
        (build, name),
    )
    return list(map(TypedefRow._make, rows))


def of_build(conn: sqlite3.Connection, build: int) -> list[TypedefRow]:
    """Every typedef of `build`, by name."""
    rows = conn.execute(f"SELECT {_COLUMNS} WHERE d.build_id = ? ORDER BY n.name, t.text", (build,))
    return list(map(TypedefRow._make, rows))


class TypedefBuild(NamedTuple):
    """A typedef on one build, for the type page."""

    build_id: int
    build: str
    target: str
    canon: str
    kind: str
    size: int | None
    layout_id: int | None


def across_builds(conn: sqlite3.Connection, name: str) -> list[TypedefBuild]:
    """The typedef `name` on every build that has it, oldest version first."""
    rows = conn.execute(
        "SELECT b.id, b.name, t.text, c.text, d.kind, d.size, d.layout_id FROM typedefs d"
        " JOIN builds b ON b.id = d.build_id JOIN type_texts t ON t.id = d.target_id"
        f" JOIN type_texts c ON c.id = d.resolved_id WHERE d.name_id = {_NAME_ID}"
        " ORDER BY b.version_sort, b.name, t.text",
        (name,),
    )
    return list(map(TypedefBuild._make, rows))


def layout_kind(conn: sqlite3.Connection, layout: int) -> str:
    """struct, union or enum."""
    return conn.execute("SELECT kind FROM layouts WHERE id = ?", (layout,)).fetchone()[0]


def enum_shape(conn: sqlite3.Connection, layout: int) -> tuple[int, list[str]]:
    """(size, enumerator names) of enum layout `layout`."""
    size = conn.execute("SELECT size FROM layouts WHERE id = ?", (layout,)).fetchone()[0]
    rows = conn.execute("SELECT name FROM enum_values WHERE layout_id = ? ORDER BY position", (layout,))
    return size, [name for (name,) in rows]


def layout_size(conn: sqlite3.Connection, layout: int) -> int:
    return conn.execute("SELECT size FROM layouts WHERE id = ?", (layout,)).fetchone()[0]
