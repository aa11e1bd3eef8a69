"""The builds row of a build being stored: identity, sources, size and counts."""

from __future__ import annotations

import sqlite3
import time

from ingest.db.sql import next_id, version_sort
from ingest.model import Build
from ingest.queries import builds as stored
from ingest.queries.builds import BuildRef

#: The builds columns a stored build fills, in the order of `_values`.
_COLUMNS = (
    "name, build_id, distro, version, release, version_sort, arch, flavor, compiler, dwarf_version,"
    " has_dwarf, has_btf, has_symtab, lacks, file_size, sha256, source_path, ingest_seconds,"
    " ingested_at, n_functions, n_instances, n_callers, n_symbols, n_structs, n_tracepoints, n_syscalls,"
    " n_lsm_hooks, n_kfuncs, n_config"
)
_N_COLUMNS = _COLUMNS.count(",") + 1


def write_build_row(
    conn: sqlite3.Connection, build: Build, seconds: float, old: BuildRef | None, label: str | None
) -> int:
    """Insert the build's row, or with `old` update it in place (the id stays, so
    groups and diff pairs keep pointing at it); returns its id."""
    values = _values(build, seconds)
    if old is not None:
        name = label if label and label != old.name and not _name_taken(conn, label) else old.name
        conn.execute(
            f"UPDATE builds SET ({_COLUMNS}) = ({', '.join('?' * _N_COLUMNS)}) WHERE id = ?",
            (name, *values, old.id),
        )
        return old.id
    build_pk = next_id(conn, "builds")
    name = _unique_name(conn, label or build.info.release or build.info.build_id[:12])
    conn.execute(
        f"INSERT INTO builds (id, {_COLUMNS}) VALUES ({', '.join('?' * (_N_COLUMNS + 1))})",
        (build_pk, name, *values),
    )
    return build_pk


def _values(build: Build, seconds: float) -> tuple:
    """The row's values after its name."""
    info = build.info
    lacks = [
        fact
        for fact, ok in (
            ("inlining, callers, instances", info.has_dwarf),
            ("types from BTF", info.has_btf),
            ("symbols", info.has_symtab),
        )
        if not ok
    ]
    return (
        info.build_id,
        info.distro,
        info.version,
        info.release,
        version_sort(info.release),
        info.arch,
        info.flavor,
        info.compiler,
        info.dwarf_version,
        info.has_dwarf,
        info.has_btf,
        info.has_symtab,
        "; ".join(lacks) or None,
        info.file_size,
        info.sha256,
        info.path,
        seconds,
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        len(build.functions),
        len(build.instances),
        len(build.calls),
        len(build.symbols),
        sum(1 for x in build.layouts if x.kind != "enum"),
        len(build.tracepoints),
        len(build.syscalls),
        len(build.lsm_hooks),
        len(build.kfuncs),
        len(build.config),
    )


def write_stored_counts(conn: sqlite3.Connection, build_pk: int, build: Build, n_structs: int) -> None:
    """Counts known once the rows are made: structs and unions as stored (DWARF-only
    builds repeat identical layouts across units), variables and modules."""
    conn.execute("UPDATE builds SET n_structs = ? WHERE id = ?", (n_structs, build_pk))
    n_variables = None if build.variables is None else len(build.variables)
    n_modules = None if build.modules is None else len(build.modules)
    conn.execute(
        "UPDATE builds SET n_variables = ?, n_modules = ? WHERE id = ?", (n_variables, n_modules, build_pk)
    )


def _name_taken(conn: sqlite3.Connection, name: str) -> bool:
    return stored.build_named(conn, name) is not None


def _unique_name(conn: sqlite3.Connection, wanted: str) -> str:
    name, n = wanted, 1
    while _name_taken(conn, name):
        n += 1
        name = f"{wanted}~{n}"
    return name
