"""Loadable modules: a build's modules, a module in every build that ships it,
its dependencies and kfuncs, and the module an item of a build lives in."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from ingest.queries._sql import NAME_ID
from ingest.queries.database import records_kfunc_modules, records_modules


class ModuleEntry(NamedTuple):
    """A loadable module of a build."""

    name_id: int
    name: str
    path: str
    error: str | None = None  # None: read; else why it is unreadable


def modules(conn: sqlite3.Connection, build: int) -> list[ModuleEntry]:
    """Every module of a build, readable or not."""
    rows = conn.execute(
        "SELECT m.name_id, n.name, m.path, m.error FROM modules m JOIN names n ON n.id = m.name_id"
        " WHERE m.build_id = ?",
        (build,),
    )
    return list(map(ModuleEntry._make, rows))


class ModuleRow(NamedTuple):
    """A row of the module_list view (schema.sql): one module of one build."""

    build_id: int
    path: str
    license: str | None
    description: str | None
    depends: str | None
    vermagic: str | None
    size: int | None
    error: str | None  # None: read; else why it is unreadable
    functions: int
    trace_events: int
    module_id: int


def modules_named(conn: sqlite3.Connection, nid: int) -> list[ModuleRow]:
    """The module `nid` in every build that ships it (none before schema 5)."""
    if not records_modules(conn):
        return []
    return [
        ModuleRow(*r)
        for r in conn.execute(
            f"SELECT {', '.join(ModuleRow._fields)} FROM module_list WHERE name_id = ? ORDER BY build_id",
            (nid,),
        )
    ]


def module_kfuncs(conn: sqlite3.Connection, module_ids: Iterable[int]) -> dict[int, list[str]]:
    """module id -> the names of the kfuncs it registers, sorted (none before kfuncs.module_id)."""
    out: dict[int, list[str]] = defaultdict(list)
    if not records_kfunc_modules(conn):
        return out
    for mid, name in conn.execute(
        "SELECT k.module_id, n.name FROM kfuncs k JOIN names n ON n.id = k.name_id"
        " WHERE k.module_id IN (SELECT value FROM json_each(?)) ORDER BY k.module_id, n.name",
        (json.dumps(sorted(module_ids)),),
    ):
        out[mid].append(name)
    return out


def vmlinux_functions_in(conn: sqlite3.Connection, build: int, directory: str) -> int:
    """How many function names of the build's vmlinux have a compile unit directly in
    `directory` (fs/ext4/): a hint that a module's code is built in there."""
    prefix = directory.rstrip("/") + "/"
    return conn.execute(
        "SELECT count(DISTINCT i.name_id) FROM instances i WHERE i.build_id = :build"
        " AND i.module_id IS NULL AND i.cu_path_id IN (SELECT id FROM paths"
        " WHERE substr(path, 1, length(:prefix)) = :prefix AND instr(substr(path, length(:prefix) + 1), '/') = 0)",
        {"build": build, "prefix": prefix},
    ).fetchone()[0]


def module_of(conn: sqlite3.Connection, table: str, build: int, name: str) -> str | None:
    """The module whose row of `table` (functions, tracepoints, kfuncs) holds
    `name` on `build`; None: vmlinux's, or no row."""
    row = conn.execute(
        f"SELECT n.name FROM {table} x JOIN modules m ON m.id = x.module_id JOIN names n ON n.id = m.name_id"
        f" WHERE x.build_id = ? AND x.name_id = {NAME_ID}",
        (build, name),
    ).fetchone()
    return row[0] if row else None


def module_chain(conn: sqlite3.Connection, build: int, module: str) -> list[str]:
    """`module` and every module it depends on (.modinfo depends=, transitively),
    in the order found: what must be loaded for its code to run."""
    chain, todo = [module], [module]
    while todo:  # one module at a time: a build has thousands, a chain a handful
        row = conn.execute(
            f"SELECT depends FROM modules WHERE build_id = ? AND name_id = {NAME_ID}", (build, todo.pop(0))
        ).fetchone()
        for dep in ((row[0] if row else None) or "").split(","):
            if dep and dep not in chain:
                chain.append(dep)
                todo.append(dep)
    return chain


def module_count(conn: sqlite3.Connection, build: int) -> int:
    """How many modules of `build` were read (unreadable ones included)."""
    return conn.execute("SELECT count(*) FROM modules WHERE build_id = ?", (build,)).fetchone()[0]
