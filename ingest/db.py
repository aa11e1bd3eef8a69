"""The only module that writes SQL: applies schema.sql, stores a Build in one
transaction, maintains the lookup tables and deletes builds."""
from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from importlib import resources
from pathlib import Path

from .model import Build, Layout, Prototype

SCHEMA_VERSION = 1


def schema_sql() -> str:
    """The text of schema.sql (shipped beside the package or inside it)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schema.sql", here / "schema.sql"):
        if candidate.exists():
            return candidate.read_text()
    return resources.files("ingest").joinpath("schema.sql").read_text()


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) a kernsurf database with the schema applied."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(schema_sql())
    if conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
    return conn


def find_build(conn: sqlite3.Connection, build_id: str) -> tuple[int, str] | None:
    """(id, name) of the build with this ELF build-id, if stored."""
    row = conn.execute("SELECT id, name FROM builds WHERE build_id = ?", (build_id,)).fetchone()
    return (row[0], row[1]) if row else None


def version_sort(text: str | None) -> str | None:
    """A string that sorts like the version: numbers zero-padded to 6 digits."""
    if not text:
        return None
    return re.sub(r"\d+", lambda m: m.group(0).zfill(6), text)


class _Lookup:
    """A lookup table (id, value) cached in memory; new values are inserted on demand."""

    def __init__(self, conn: sqlite3.Connection, table: str, column: str):
        self.conn, self.table, self.column = conn, table, column
        self.ids = dict((v, i) for i, v in conn.execute(f"SELECT id, {column} FROM {table}"))
        self.next_id = max(self.ids.values(), default=0) + 1
        self.new: list[tuple[int, str]] = []

    def __call__(self, value: str | None) -> int | None:
        if value is None:
            return None
        i = self.ids.get(value)
        if i is None:
            i = self.ids[value] = self.next_id
            self.next_id += 1
            self.new.append((i, value))
        return i

    def flush(self) -> None:
        if self.new:
            self.conn.executemany(f"INSERT INTO {self.table} (id, {self.column}) VALUES (?, ?)", self.new)
            self.new = []


def _addr(address: int | None) -> int | None:
    """Addresses are stored as signed 64-bit integers (SQLite's INTEGER);
    printf('%x', address) prints them back as the unsigned address."""
    if address is None or address < 1 << 63:
        return address
    return address - (1 << 64)


def _next_id(conn: sqlite3.Connection, table: str) -> int:
    return (conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0) + 1


def _unique_name(conn: sqlite3.Connection, wanted: str) -> str:
    name, n = wanted, 1
    while conn.execute("SELECT 1 FROM builds WHERE name = ?", (name,)).fetchone():
        n += 1
        name = f"{wanted}~{n}"
    return name


def _layout_digest(layout: Layout) -> str:
    h = hashlib.sha1(f"{layout.kind}|{layout.size}".encode())
    for f in layout.fields:
        h.update(f"|{f.name}|{f.type_text}|{f.decl}|{f.bit_offset}|{f.bit_size}|{f.byte_size}|{f.parent}".encode())
    for name, value in layout.values:
        h.update(f"|{name}={value}".encode())
    return h.hexdigest()


def delete_build(conn: sqlite3.Connection, build: int) -> None:
    """Remove one build's rows (shared lookups, layouts and prototypes stay)."""
    conn.execute("DELETE FROM callers WHERE callee_id IN (SELECT id FROM instances WHERE build_id = ?)", (build,))
    for table in ("functions", "types", "symbols", "instances"):
        conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (build,))
    conn.execute("DELETE FROM builds WHERE id = ?", (build,))


def store_build(conn: sqlite3.Connection, build: Build, seconds: float, replace: bool = False,
                label: str | None = None) -> int:
    """Insert the whole build in one transaction; returns its id."""
    info = build.info
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = find_build(conn, info.build_id)
        if old is not None:
            if not replace:
                raise ValueError(f"build {info.build_id} is already stored as {old[1]}")
            delete_build(conn, old[0])
        names = _Lookup(conn, "names", "name")
        paths = _Lookup(conn, "paths", "path")
        texts = _Lookup(conn, "type_texts", "text")
        build_pk = _next_id(conn, "builds")
        lacks = [fact for fact, ok in (("inlining, callers, instances", info.has_dwarf),
                                        ("types from BTF", info.has_btf), ("symbols", info.has_symtab)) if not ok]
        conn.execute(
            "INSERT INTO builds (id, name, build_id, distro, version, release, version_sort, arch, flavor,"
            " compiler, dwarf_version, has_dwarf, has_btf, has_symtab, lacks, file_size, sha256, source_path,"
            " ingest_seconds, ingested_at, n_functions, n_instances, n_callers, n_symbols, n_structs)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (build_pk, _unique_name(conn, label or info.release or info.build_id[:12]), info.build_id,
             info.distro, info.version, info.release, version_sort(info.release), info.arch, info.flavor,
             info.compiler, info.dwarf_version, info.has_dwarf, info.has_btf, info.has_symtab,
             "; ".join(lacks) or None, info.file_size, info.sha256, info.path, seconds,
             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), len(build.functions), len(build.instances),
             len(build.calls), len(build.symbols), sum(1 for x in build.layouts if x.kind != "enum")))

        first = _next_id(conn, "instances")
        instance_rows = [(first + k, build_pk, names(i.name), i.external, paths(i.decl_file), i.decl_line,
                          paths(i.cu), i.inline, _addr(i.address), i.defined)
                         for k, i in enumerate(build.instances)]
        symbol_rows = [(build_pk, names(s.name), names(s.stem), " ".join(s.suffixes) or None, _addr(s.address),
                        s.size, s.binding, s.section) for s in build.symbols]
        protos = _PrototypeStore(conn, texts)
        function_rows = [(names(f.name), build_pk, f.collision, f.inline, " ".join(f.suffixes) or None,
                          f.n_instances, f.n_symbols, protos(f.prototype),
                          f.prototype.source if f.prototype else None) for f in build.functions]
        layouts = _LayoutStore(conn, texts)
        type_rows = sorted({(names(x.name), build_pk, layouts(x), x.kind) for x in build.layouts})
        # Parents before children: foreign keys are checked row by row.
        for store in (names, paths, texts, protos, layouts):
            store.flush()
        conn.executemany(
            "INSERT INTO instances (id, build_id, name_id, external, decl_path_id, decl_line, cu_path_id,"
            " inline, address, defined) VALUES (?,?,?,?,?,?,?,?,?,?)", instance_rows)
        conn.executemany(
            "INSERT INTO callers (callee_id, caller_id, kind, sites) VALUES (?,?,?,?)",
            [(first + c.callee, first + c.caller, c.kind, c.sites) for c in build.calls])
        conn.executemany(
            "INSERT INTO symbols (build_id, name_id, stem_id, suffixes, address, size, binding, section)"
            " VALUES (?,?,?,?,?,?,?,?)", symbol_rows)
        conn.executemany(
            "INSERT INTO functions (name_id, build_id, collision, inline, suffixes, n_instances, n_symbols,"
            " prototype_id, prototype_source) VALUES (?,?,?,?,?,?,?,?,?)", function_rows)
        conn.executemany("INSERT INTO types (name_id, build_id, layout_id, kind) VALUES (?,?,?,?)", type_rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return build_pk


class _PrototypeStore:
    """Prototypes deduplicated by their printed text."""

    def __init__(self, conn: sqlite3.Connection, texts: _Lookup):
        self.conn, self.texts = conn, texts
        self.ids = dict((d, i) for i, d in conn.execute("SELECT id, digest FROM prototypes"))
        self.next_id = max(self.ids.values(), default=0) + 1
        self.rows: list[tuple] = []
        self.params: list[tuple] = []

    def __call__(self, proto: Prototype | None) -> int | None:
        if proto is None:
            return None
        digest = int.from_bytes(hashlib.sha1(proto.text.encode()).digest()[:8], "big", signed=True)
        i = self.ids.get(digest)
        if i is None:
            i = self.ids[digest] = self.next_id
            self.next_id += 1
            self.rows.append((i, digest, proto.text, self.texts(proto.return_type), proto.variadic))
            self.params.extend((i, k, name, self.texts(t)) for k, (name, t) in enumerate(proto.params))
        return i

    def flush(self) -> None:
        self.conn.executemany("INSERT INTO prototypes (id, digest, text, return_type_id, variadic) VALUES (?,?,?,?,?)",
                              self.rows)
        self.conn.executemany("INSERT INTO prototype_params (prototype_id, position, name, type_id)"
                              " VALUES (?,?,?,?)", self.params)


class _LayoutStore:
    """Layouts deduplicated by a digest of their content."""

    def __init__(self, conn: sqlite3.Connection, texts: _Lookup):
        self.conn, self.texts = conn, texts
        self.ids = dict((d, i) for i, d in conn.execute("SELECT id, digest FROM layouts"))
        self.next_id = max(self.ids.values(), default=0) + 1
        self.rows: list[tuple] = []
        self.fields: list[tuple] = []
        self.values: list[tuple] = []

    def __call__(self, layout: Layout) -> int:
        digest = _layout_digest(layout)
        i = self.ids.get(digest)
        if i is None:
            i = self.ids[digest] = self.next_id
            self.next_id += 1
            self.rows.append((i, layout.kind, layout.size, digest))
            self.fields.extend((i, f.position, f.name, self.texts(f.type_text), self.texts(f.decl),
                                f.bit_offset, f.bit_size, f.byte_size, f.parent) for f in layout.fields)
            self.values.extend((i, k, name, value - (1 << 64) if value >= 1 << 63 else value)
                               for k, (name, value) in enumerate(layout.values))
        return i

    def flush(self) -> None:
        self.conn.executemany("INSERT INTO layouts (id, kind, size, digest) VALUES (?,?,?,?)", self.rows)
        self.conn.executemany(
            "INSERT INTO struct_fields (layout_id, position, name, type_id, decl_id, bit_offset, bit_size,"
            " byte_size, parent) VALUES (?,?,?,?,?,?,?,?,?)", self.fields)
        self.conn.executemany("INSERT INTO enum_values (layout_id, position, name, value) VALUES (?,?,?,?)",
                              self.values)
