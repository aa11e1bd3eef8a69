"""Where a function lives when it lives in several modules (docs/concepts.md#modules):
the modules that hold a copy of it per build, derived from the instances and
symbols tables (no table of its own: they already say it). The function page's
status line and `kernsurf check`'s "must be loaded" both read this."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from ingest.queries.database import records_modules


class ModuleCopy(NamedTuple):
    """One module's copy of a function in one build."""

    build_id: int
    module: str
    instances: int  # its defined DWARF instances there
    symbols: int  # its symbols there (the name as stem: foo, foo.isra.0, ...)
    exact: bool  # a symbol named exactly like the function: what kprobe and fentry attach to


#: A function's copies in modules: defined instances and symbols by module, by module name.
_COPIES = (
    "SELECT x.build_id, mn.name, sum(x.instance), sum(x.symbol), max(x.exact) FROM ("
    " SELECT build_id, module_id, 1 AS instance, 0 AS symbol, 0 AS exact FROM instances"
    "  WHERE name_id = :nid AND defined AND module_id IS NOT NULL {build}"
    " UNION ALL SELECT build_id, module_id, 0, 1, name_id = stem_id FROM symbols"
    "  WHERE stem_id = :nid AND module_id IS NOT NULL {build}"
    ") x JOIN modules m ON m.id = x.module_id JOIN names mn ON mn.id = m.name_id"
    " GROUP BY x.build_id, x.module_id ORDER BY x.build_id, mn.name"
)


def module_copies(
    conn: sqlite3.Connection, nid: int, build: int | None = None
) -> dict[int, list[ModuleCopy]]:
    """build id -> the modules holding a copy of function `nid` (of one build, or
    every build), by module name; builds whose modules hold none are left out."""
    if not records_modules(conn):
        return {}
    sql = _COPIES.format(build="AND build_id = :build" if build is not None else "")
    out: dict[int, list[ModuleCopy]] = {}
    for r in conn.execute(sql, {"nid": nid, "build": build}):
        out.setdefault(r[0], []).append(ModuleCopy(r[0], r[1], r[2], r[3], bool(r[4])))
    return out


def copies_named(conn: sqlite3.Connection, build: int, name: str) -> list[ModuleCopy]:
    """The modules holding a copy of function `name` on `build`, by name."""
    row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
    return module_copies(conn, row[0], build).get(build, []) if row else []
