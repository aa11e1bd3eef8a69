"""The writer: opens a kernsurf database (schema.sql, migrations) and does every
write -- stores a Build, the groups, the differences and the search index -- each
in one `transaction()`. Reads live in ingest/queries/.

sqlite-utils does the table introspection of the migrations and the rare
one-name lookup of `store_diff`. Raw sqlite3 stays on purpose where speed or
SQLite specifics matter: the bulk inserts of `store_build` (executemany over
prepared rows, ids assigned here so parents precede children), the in-memory
lookup caches (`_Lookup`), the BEGIN IMMEDIATE of `transaction()` (sqlite-utils'
atomic() begins deferred, which can deadlock two writers) and the FTS5 commands
of `build_search_index`.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from itertools import chain, count
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

import sqlite_utils

from ingest.model import AttachFacts, Build, FunctionStatus, Layout, Prototype
from ingest.queries import builds
from ingest.queries.builds import StoredGroup
from ingest.queries.names import name_ids
from ingest.types.layouts import digest_of

SCHEMA_VERSION = 7  # 3: syscall events, variables, member type references, check reason facts;
# 4: variables in build_summary and name_kinds; 5: modules; 6: modules' kfuncs, types and events move;
# 7: kfuncs move

#: Function rows made and inserted at a time (store_build).
_FUNCTION_SLICE = 50_000


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
    # WAL: readers (Datasette) keep reading the last committed state while a
    # build is written, and are never locked out by the commit. Persistent in the file.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -262144")  # 256 MB: index inserts of a build stay in memory
    _migrate(conn)
    conn.executescript(schema_sql())
    version = _utils(conn).table("schema_version")
    if not version.count:
        version.insert({"version": SCHEMA_VERSION})
    store_counts(conn)  # of builds stored before counts were
    return conn


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing database (no schema changes)."""
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)


def _utils(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over an open connection (no PRAGMA changes, no plugins)."""
    return sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)


_savepoints = count()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any
    exception. Inside an open transaction it nests as a SAVEPOINT (the
    sqlite-utils pattern), so a caller can group several writes into one."""
    if conn.in_transaction:
        name = f"kernsurf_{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
            conn.execute(f"RELEASE {name}")
        except BaseException:
            if conn.in_transaction:  # an error may already have ended the transaction
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        return
    # IMMEDIATE: take the write lock now, so two writers wait instead of deadlocking.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def version_sort(text: str | None) -> str | None:
    """A string that sorts like the version: numbers zero-padded to 6 digits."""
    if not text:
        return None
    return re.sub(r"\d+", lambda m: m.group(0).zfill(6), text)


class _Lookup:
    """A lookup table (id, value) cached in memory; new values are inserted on
    demand. `ids` maps None to None, so rows can index it directly once
    `add()` has numbered their values."""

    def __init__(self, conn: sqlite3.Connection, table: str, column: str):
        self.conn, self.table, self.column = conn, table, column
        self.ids: dict[str | None, int | None] = {None: None}
        self.ids.update(conn.execute(f"SELECT {column}, id FROM {table}"))
        self.next_id = max((i for i in self.ids.values() if i is not None), default=0) + 1
        self.new: list[tuple[int, str]] = []

    def __call__(self, value: str | None) -> int | None:
        i = self.ids.get(value, 0)
        if i == 0:
            i = self.ids[value] = self.next_id
            self.next_id += 1
            self.new.append((i, value))  # type: ignore[arg-type]
        return i

    def add(self, values: Iterable[str | None]) -> dict[str | None, int | None]:
        """Number every value not numbered yet (in first-seen order); the id map."""
        ids = self.ids
        for value in dict.fromkeys(values):
            if value not in ids:
                ids[value] = self.next_id
                self.new.append((self.next_id, value))  # type: ignore[arg-type]
                self.next_id += 1
        return ids

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


def _name_taken(conn: sqlite3.Connection, name: str) -> bool:
    return builds.build_named(conn, name) is not None


def _unique_name(conn: sqlite3.Connection, wanted: str) -> str:
    name, n = wanted, 1
    while _name_taken(conn, name):
        n += 1
        name = f"{wanted}~{n}"
    return name


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
        "modules",  # last: the rows above refer to it
    ):
        conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (build,))
    conn.execute(f"UPDATE builds SET ({', '.join(SUMMARY_COUNTS)}) = ({_NULLS}) WHERE id = ?", (build,))


#: build_summary's counts over functions and types that builds stores: column -> the view's column.
SUMMARY_COUNTS = {
    "n_full_inline": "full_inline",  # first: NULL when the counts are not stored
    "n_selective_inline": "selective_inline",
    "n_declared_only": "declared_only",
    "n_transformed": "transformed",
    "n_collisions": "collisions",
    "n_duplicates": "duplicates",
    "n_kprobe_ok": "kprobe_ok",
    "n_fentry_ok": "fentry_ok",
    "n_notrace": "notrace",
    "n_module_functions": "module_functions",
    "n_struct_types": "structs",
    "n_union_types": "unions",
    "n_enum_types": "enums",
}
_NULLS = ", ".join(["NULL"] * len(SUMMARY_COUNTS))


def store_counts(conn: sqlite3.Connection) -> None:
    """Store in builds what build_summary counts over functions and types, for the
    builds that lack it (just stored, or stored before): the view then reads them.
    Writes (takes the write lock) only when some build lacks them."""
    rows = conn.execute(
        f"SELECT {', '.join(SUMMARY_COUNTS.values())}, build_id FROM build_summary"
        " WHERE build_id IN (SELECT id FROM builds WHERE n_full_inline IS NULL)"
    ).fetchall()
    if rows:
        with transaction(conn):
            conn.executemany(
                f"UPDATE builds SET ({', '.join(SUMMARY_COUNTS)}) = ({', '.join('?' * len(SUMMARY_COUNTS))})"
                " WHERE id = ?",
                rows,
            )


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


def store_build(
    conn: sqlite3.Connection, build: Build, seconds: float, replace: bool = False, label: str | None = None
) -> int:
    """Insert the whole build in one transaction; returns its id."""
    info = build.info
    with _foreign_keys_unchecked(conn), transaction(conn):
        old = builds.find_build(conn, info.build_id)
        if old is not None and not replace:
            raise ValueError(f"build {info.build_id} is already stored as {old.name}")
        names = _Lookup(conn, "names", "name")
        paths = _Lookup(conn, "paths", "path")
        texts = _Lookup(conn, "type_texts", "text")
        long_texts = _Lookup(conn, "texts", "text")
        lacks = [
            fact
            for fact, ok in (
                ("inlining, callers, instances", info.has_dwarf),
                ("types from BTF", info.has_btf),
                ("symbols", info.has_symtab),
            )
            if not ok
        ]
        columns = (
            "name, build_id, distro, version, release, version_sort, arch, flavor, compiler, dwarf_version,"
            " has_dwarf, has_btf, has_symtab, lacks, file_size, sha256, source_path, ingest_seconds,"
            " ingested_at, n_functions, n_instances, n_callers, n_symbols, n_structs, n_tracepoints, n_syscalls,"
            " n_lsm_hooks, n_kfuncs, n_config"
        )
        values = (
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
        if old is not None:  # replace in place: the id stays, so groups and diff pairs keep pointing at it
            build_pk = old.id
            clear_build(conn, build_pk)
            name = label if label and label != old.name and not _name_taken(conn, label) else old.name
            conn.execute(
                f"UPDATE builds SET ({columns}) = ({', '.join('?' * 29)}) WHERE id = ?",
                (name, *values, build_pk),
            )
        else:
            build_pk = _next_id(conn, "builds")
            name = _unique_name(conn, label or info.release or info.build_id[:12])
            conn.execute(
                f"INSERT INTO builds (id, {columns}) VALUES ({', '.join('?' * 30)})",
                (build_pk, name, *values),
            )

        module_ids, module_rows = _module_rows(conn, build, build_pk, names)
        first = _next_id(conn, "instances")
        # Instance, caller and symbol rows are made while they are inserted (millions with
        # modules: lists of them would double the peak memory); their lookups are filled first.
        instances = build.instances
        name_id = names.add(map(attrgetter("name"), instances))
        path_id = paths.add(chain.from_iterable(map(attrgetter("decl_file", "cu"), instances)))
        names.add(chain.from_iterable(map(attrgetter("name", "stem"), build.symbols)))
        instance_rows = (
            (
                first + k,
                build_pk,
                name_id[i.name],
                i.external,
                path_id[i.decl_file],
                i.decl_line,
                path_id[i.cu],
                i.inline,
                _addr(i.address),
                i.defined,
                module_ids.get(i.module),
            )
            for k, i in enumerate(instances)
        )
        attach = build.attach
        module_attach = {m.name: m.attach for m in build.modules or ()}
        module_btf = {m.name: m.btf_funcs for m in build.modules or ()}
        symbol_rows = (
            (
                build_pk,
                name_id[s.name],
                name_id[s.stem],
                " ".join(s.suffixes) or None,
                _addr(s.address),
                s.size,
                s.binding,
                s.section,
                *_attach_columns((attach if s.module is None else module_attach[s.module]).get(s.name)),
                module_ids.get(s.module),
            )
            for s in build.symbols
        )
        btf_funcs = build.btf_funcs if build.info.has_btf else None
        protos = _PrototypeStore(conn, texts)
        name_id = names.add(map(attrgetter("name"), build.functions))

        def function_row(f: FunctionStatus) -> tuple:
            return (
                name_id[f.name],
                build_pk,
                f.collision,
                f.inline,
                " ".join(f.suffixes) or None,
                f.n_instances,
                f.n_symbols,
                protos(f.prototype),
                f.prototype.source if f.prototype else None,
                *_attach_columns((attach if f.module is None else module_attach[f.module]).get(f.name)),
                None
                if btf_funcs is None
                else f.name in (btf_funcs if f.module is None else module_btf[f.module]),
                module_ids.get(f.module),
            )

        layouts = _LayoutStore(conn, texts)
        type_rows: list[tuple[int | None, int, int, str, int | None]] = sorted(
            {(names(x.name), build_pk, layouts(x), x.kind, None) for x in build.layouts}
        )
        in_vmlinux = {x.name for x in build.layouts}
        module_types: dict[
            tuple[int | None, int, int, str], int
        ] = {}  # a layout two modules share: the first
        for m in build.modules or ():
            for x in m.layouts:
                if x.name not in in_vmlinux:
                    module_types.setdefault((names(x.name), build_pk, layouts(x), x.kind), module_ids[m.name])
        type_rows += sorted((*key, module) for key, module in module_types.items())
        # Count what is stored: DWARF-only builds repeat identical layouts across units.
        conn.execute(
            "UPDATE builds SET n_structs = ? WHERE id = ?",
            (sum(1 for _, _, _, kind, _ in type_rows if kind != "enum"), build_pk),
        )
        n_variables = None if build.variables is None else len(build.variables)
        n_modules = None if build.modules is None else len(build.modules)
        conn.execute(
            "UPDATE builds SET n_variables = ?, n_modules = ? WHERE id = ?",
            (n_variables, n_modules, build_pk),
        )
        # Parents before children: foreign keys are checked row by row.
        surface_rows = _surface_rows(build, build_pk, names, texts, long_texts, layouts, module_ids)
        for store in (names, paths, texts, long_texts, protos, layouts):
            store.flush()
        conn.executemany(
            "INSERT INTO modules (id, build_id, name_id, path, license, description, depends, vermagic, size, error)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            module_rows,
        )
        # A database holding fewer instances than this build adds (its first builds): indexes after.
        with _indexes_made_after(conn, ("instances", "symbols", "functions"), first - 1 < len(instances)):
            conn.executemany(
                "INSERT INTO instances (id, build_id, name_id, external, decl_path_id, decl_line, cu_path_id,"
                " inline, address, defined, module_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                instance_rows,
            )
            conn.executemany(
                "INSERT INTO callers (callee_id, caller_id, kind, sites) VALUES (?,?,?,?)",
                ((first + c.callee, first + c.caller, c.kind, c.sites) for c in build.calls),
            )
            conn.executemany(
                "INSERT INTO symbols (build_id, name_id, stem_id, suffixes, address, size, binding, section,"
                " ftrace, kprobe_blocked, module_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                symbol_rows,
            )
            # In slices, each after the prototypes it adds: all the rows at once cost ~150 MB of peak memory.
            functions = build.functions
            for start in range(0, len(functions), _FUNCTION_SLICE):
                rows = [function_row(f) for f in functions[start : start + _FUNCTION_SLICE]]
                texts.flush()
                protos.flush()
                conn.executemany(
                    "INSERT INTO functions (name_id, build_id, collision, inline, suffixes, n_instances,"
                    " n_symbols, prototype_id, prototype_source, ftrace, kprobe_blocked, btf_func, module_id)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
        conn.executemany(
            "INSERT INTO types (name_id, build_id, layout_id, kind, module_id) VALUES (?,?,?,?,?)", type_rows
        )
        for table, rows in surface_rows.items():
            if rows:
                conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        store_counts(conn)
    return build_pk


def _attach_columns(facts: AttachFacts | None) -> tuple[int | None, str | None]:
    """(ftrace, kprobe_blocked) columns; (None, None) when not recorded."""
    return (None, None) if facts is None else (int(facts.ftrace), facts.kprobe_blocked)


def _module_rows(
    conn: sqlite3.Connection, build: Build, build_pk: int, names: _Lookup
) -> tuple[dict[str | None, int], list[tuple]]:
    """(module name -> id, rows of the modules table); a name twice in one
    build (two files naming one module) keeps its first file."""
    ids: dict[str | None, int] = {}
    rows = []
    next_id = _next_id(conn, "modules")
    for m in build.modules or ():
        if m.name in ids:
            continue
        ids[m.name] = next_id
        depends = ",".join(m.depends) or None
        rows.append(
            (
                next_id,
                build_pk,
                names(m.name),
                m.path,
                m.license,
                m.description,
                depends,
                m.vermagic,
                m.size,
                m.error,
            )
        )
        next_id += 1
    return ids, rows


def _surface_rows(
    build: Build,
    build_pk: int,
    names: _Lookup,
    texts: _Lookup,
    long_texts: _Lookup,
    layouts: _LayoutStore,
    module_ids: dict[str | None, int],
) -> dict[str, list[tuple]]:
    """Rows of the surface tables, in their column order (schema.sql)."""
    structs = {x.name: x for x in build.layouts if x.kind == "struct"}
    for m in build.modules or ():
        for x in m.layouts:
            if x.kind == "struct":
                structs.setdefault(x.name, x)
    return {
        "tracepoints": [
            (
                names(t.name),
                build_pk,
                t.system,
                names(t.event_class),
                layouts(structs[t.struct]) if t.struct in structs else None,
                names(t.func),
                long_texts(t.print_fmt),
                texts(t.raw_prototype),
                names(t.syscall),
                long_texts(t.fields),
                module_ids.get(t.module),
            )
            for t in build.tracepoints
        ],
        "syscalls": [
            (build_pk, s.abi, s.number, names(s.name), names(s.symbol), names(s.table))
            for s in build.syscalls
        ],
        "lsm_hooks": [(names(h.name), build_pk, texts(h.prototype), int(h.bpf_lsm)) for h in build.lsm_hooks],
        "kfuncs": [
            (names(k.name), build_pk, k.source, " ".join(k.sets) or None, k.flags, module_ids.get(k.module))
            for k in build.kfuncs
        ],
        "config_options": [(names(name), build_pk, value) for name, value in sorted(build.config.items())],
        "variables": [
            (
                names(v.name),
                build_pk,
                _addr(v.address),
                v.size,
                v.binding,
                v.section,
                int(v.per_cpu),
                int(v.btf_var),
            )
            for v in build.variables or ()
        ],
    }


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
        canon_params: Sequence[str | None] = proto.canon_params or [None] * len(proto.params)
        key = proto.text
        if proto.canon_return not in (None, proto.return_type) or any(
            c is not None and c != t for c, (_, t) in zip(canon_params, proto.params)
        ):
            key += "~" + "|".join(map(str, [proto.canon_return, *canon_params]))  # same text, other meaning
        digest = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big", signed=True)
        i = self.ids.get(digest)
        if i is None:
            i = self.ids[digest] = self.next_id
            self.next_id += 1
            texts, stored = self.texts, self.texts.ids.get  # stored(): the common case, without a call
            self.rows.append(
                (
                    i,
                    digest,
                    proto.text,
                    stored(proto.return_type) or texts(proto.return_type),
                    proto.variadic,
                    stored(proto.canon_return) or texts(proto.canon_return),
                )
            )
            self.params.extend(
                (i, k, name, stored(t) or texts(t), stored(c) or texts(c))
                for k, ((name, t), c) in enumerate(zip(proto.params, canon_params))
            )
        return i

    def flush(self) -> None:
        """Insert the prototypes numbered since the last flush."""
        self.conn.executemany(
            "INSERT INTO prototypes (id, digest, text, return_type_id, variadic, canon_return_id)"
            " VALUES (?,?,?,?,?,?)",
            self.rows,
        )
        self.conn.executemany(
            "INSERT INTO prototype_params (prototype_id, position, name, type_id, canon_id)"
            " VALUES (?,?,?,?,?)",
            self.params,
        )
        self.rows, self.params = [], []


class _LayoutStore:
    """Layouts deduplicated by a digest of their content."""

    def __init__(self, conn: sqlite3.Connection, texts: _Lookup):
        self.conn, self.texts = conn, texts
        self.ids = dict((d, i) for i, d in conn.execute("SELECT id, digest FROM layouts"))
        self.next_id = max(self.ids.values(), default=0) + 1
        self.rows: list[tuple] = []
        self.fields: list[tuple] = []
        self.values: list[tuple] = []
        self.seen: dict[int, tuple[int, str]] = {}  # id(layout) -> (layout id, digest)

    def __call__(self, layout: Layout) -> int:
        return self.store(layout)[0]

    def store(self, layout: Layout) -> tuple[int, str]:
        """(layout id, digest) of `layout`, storing it and the layouts its
        members hold (first: a digest covers theirs) when new."""
        known = self.seen.get(id(layout))
        if known is not None:
            return known
        held = [self.store(f.type_layout) if f.type_layout is not None else None for f in layout.fields]
        digest = digest_of(layout)
        i = self.ids.get(digest)
        self.seen[id(layout)] = (i or self.next_id, digest)
        if i is None:
            i = self.ids[digest] = self.next_id
            self.next_id += 1
            self.rows.append((i, layout.kind, layout.size, digest))
            texts, stored = self.texts, self.texts.ids.get  # stored(): the common case, without a call
            self.fields.extend(
                (
                    i,
                    f.position,
                    f.name,
                    stored(f.type_text) or texts(f.type_text),
                    stored(f.decl) or texts(f.decl),
                    f.bit_offset,
                    f.bit_size,
                    f.byte_size,
                    f.parent,
                    stored(f.canon_type) or texts(f.canon_type),
                    f.type_kind,
                    h[0] if h else None,
                )
                for f, h in zip(layout.fields, held)
            )
            self.values.extend(
                (i, k, name, value - (1 << 64) if value >= 1 << 63 else value)
                for k, (name, value) in enumerate(layout.values)
            )
        return i, digest

    def flush(self) -> None:
        self.conn.executemany("INSERT INTO layouts (id, kind, size, digest) VALUES (?,?,?,?)", self.rows)
        self.conn.executemany(
            "INSERT INTO struct_fields (layout_id, position, name, type_id, decl_id, bit_offset, bit_size,"
            " byte_size, parent, canon_id, type_kind, type_layout_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            self.fields,
        )
        self.conn.executemany(
            "INSERT INTO enum_values (layout_id, position, name, value) VALUES (?,?,?,?)", self.values
        )


# --------------------------------------------------------------------------- groups


def store_groups(conn: sqlite3.Connection, groups: Iterable[StoredGroup]) -> None:
    """Replace the groups and their members with `groups`, in one transaction.

    Groups keep their id when their name is unchanged, so rows that refer to a
    group (e.g. computed differences) stay valid; groups not listed are deleted.
    Position follows the list order; member position 0 is a variants group's baseline.
    """
    groups = list(groups)
    with transaction(conn):
        old = dict(conn.execute("SELECT name, id FROM groups"))
        wanted = {name for name, _, _ in groups}
        for name, gid in old.items():
            if name not in wanted:
                conn.execute("DELETE FROM group_members WHERE group_id = ?", (gid,))
                conn.execute("DELETE FROM groups WHERE id = ?", (gid,))
        next_id = _next_id(conn, "groups")
        for position, (name, kind, members) in enumerate(groups):
            gid = old.get(name)
            if gid is None:
                gid, next_id = next_id, next_id + 1
                conn.execute(
                    "INSERT INTO groups (id, name, kind, position) VALUES (?,?,?,?)",
                    (gid, name, kind, position),
                )
            else:
                conn.execute("UPDATE groups SET kind = ?, position = ? WHERE id = ?", (kind, position, gid))
                conn.execute("DELETE FROM group_members WHERE group_id = ?", (gid,))
            conn.executemany(
                "INSERT INTO group_members (group_id, position, build_id, label) VALUES (?,?,?,?)",
                [(gid, k, build, label) for k, (build, label) in enumerate(members)],
            )


# --------------------------------------------------------------------------- search index


def build_search_index(conn: sqlite3.Connection) -> int:
    """Refill the name_search index (schema.sql) with every function, type,
    tracepoint, syscall, LSM hook, kfunc, kernel variable, config option and module name, in one
    transaction; returns how many names it holds."""
    with transaction(conn):
        conn.execute("INSERT INTO name_search (name_search) VALUES ('delete-all')")
        cursor = conn.execute(
            "INSERT INTO name_search (rowid, name) SELECT id, name FROM names WHERE id IN"
            " (SELECT name_id FROM functions UNION SELECT name_id FROM types"
            " UNION SELECT name_id FROM tracepoints UNION SELECT name_id FROM syscalls"
            " UNION SELECT name_id FROM lsm_hooks UNION SELECT name_id FROM kfuncs"
            " UNION SELECT name_id FROM config_options UNION SELECT name_id FROM variables"
            " UNION SELECT name_id FROM modules)"
        )
        names = cursor.rowcount
        conn.execute("INSERT INTO name_search (name_search) VALUES ('optimize')")
    return names


# --------------------------------------------------------------------------- migrations


_ADDED_COLUMNS = (  # (table, column, declaration) added after the first release of the schema
    ("prototypes", "canon_return_id", "INTEGER REFERENCES type_texts(id)"),
    ("prototype_params", "canon_id", "INTEGER REFERENCES type_texts(id)"),
    ("struct_fields", "canon_id", "INTEGER REFERENCES type_texts(id)"),
    ("struct_fields", "type_kind", "TEXT"),
    ("struct_fields", "type_layout_id", "INTEGER REFERENCES layouts(id)"),
    ("symbols", "ftrace", "INTEGER"),
    ("symbols", "kprobe_blocked", "TEXT"),
    ("functions", "ftrace", "INTEGER"),
    ("functions", "kprobe_blocked", "TEXT"),
    ("functions", "btf_func", "INTEGER"),
    *(
        ("builds", c, "INTEGER")
        for c in ("n_tracepoints", "n_syscalls", "n_lsm_hooks", "n_kfuncs", "n_config", "n_variables")
    ),
    ("tracepoints", "syscall_id", "INTEGER REFERENCES names(id)"),
    ("tracepoints", "fields_id", "INTEGER REFERENCES texts(id)"),
    ("builds", "n_modules", "INTEGER"),
    *(("builds", c, "INTEGER") for c in SUMMARY_COUNTS),
    *(
        (table, "module_id", "INTEGER REFERENCES modules(id)")
        for table in ("instances", "symbols", "functions", "types", "tracepoints", "kfuncs")
    ),
)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a database made by an older schema up to date: add the (nullable)
    new columns, whose old rows keep NULL ("not recorded"), and drop the views
    schema.sql defines, which it then recreates with their new columns (a
    view holds no data; views a user added stay)."""
    database = _utils(conn)
    tables = set(database.table_names())
    if "schema_version" not in tables:
        return  # a new database
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 1
    missing = [(t, c, d) for t, c, d in _ADDED_COLUMNS if t in tables and c not in database[t].columns_dict]
    if version >= SCHEMA_VERSION and not missing:  # columns added within a version migrate too
        return
    for table, column, declaration in missing:
        # Raw ALTER: sqlite-utils' add_column cannot declare the REFERENCES clause.
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    schema = schema_sql()
    for view in re.findall(r"CREATE VIEW IF NOT EXISTS (\w+)", schema):
        conn.execute(f"DROP VIEW IF EXISTS {view}")
    if _stored_sql(conn, "changes") != _declared_sql(schema, "changes"):
        # New item kinds widen the changes CHECK constraint, which SQLite cannot
        # alter: drop the stored diffs (group pairs are recomputed by the next
        # `kernsurf build`) and the vocabulary, which schema.sql then re-creates.
        conn.execute("DROP TABLE IF EXISTS changes")
        conn.execute("DELETE FROM diff_pairs")
        conn.execute("DELETE FROM change_kinds")
    if version < 7:  # the moves came to cover types and trace events (6), kfuncs (7)
        conn.execute(
            "UPDATE change_kinds SET items = 'function struct union enum tracepoint kfunc'"
            " WHERE name IN ('moved into module', 'moved into vmlinux')"
        )
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))


def _stored_sql(conn: sqlite3.Connection, table: str) -> str | None:
    """The CREATE TABLE text of `table` as the database holds it, whitespace folded."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return " ".join(re.sub(r"--[^\n]*", "", row[0]).split()) if row else None


def _declared_sql(schema: str, table: str) -> str:
    """The CREATE TABLE text of `table` in schema.sql as SQLite stores it
    (without IF NOT EXISTS, comments dropped, whitespace folded)."""
    found = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \((.*?\n)\);", schema, re.S)
    if found is None:
        raise ValueError(f"schema.sql declares no table {table}")
    body = re.sub(r"--[^\n]*", "", found.group(1))
    return " ".join(f"CREATE TABLE {table} ({body})".split())


# --------------------------------------------------------------------------- differences (diff.py)


class ChangeRow(NamedTuple):
    """One change to store (ingest.changes.diff.Change.stored_row)."""

    item_kind: str
    name: str
    change_kind: str
    detail: str | None
    old: str | None
    new: str | None


def store_diff(
    conn: sqlite3.Connection,
    build_a: int,
    build_b: int,
    group_id: int | None,
    changes: list[ChangeRow],
    stamp: str = "",
    seconds: float | None = None,
) -> int:
    """Store the differences of one pair of builds, replacing any stored for
    that pair, in one transaction; returns the pair's id."""
    with transaction(conn):
        old = conn.execute(
            "SELECT id FROM diff_pairs WHERE build_a = ? AND build_b = ?", (build_a, build_b)
        ).fetchone()
        if old:
            _delete_pair(conn, old[0])
        pair = _next_id(conn, "diff_pairs")
        conn.execute(
            "INSERT INTO diff_pairs (id, group_id, build_a, build_b, stamp, computed_at, seconds, n_changes)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                pair,
                group_id,
                build_a,
                build_b,
                stamp,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                seconds,
                len(changes),
            ),
        )
        wanted = {c.name for c in changes}
        ids = name_ids(conn, wanted)
        if len(ids) < len(wanted):  # names no build has (only when called by hand)
            names = _utils(conn).table("names")
            ids = {name: ids.get(name) or names.lookup({"name": name}) for name in wanted}
        conn.executemany(
            "INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)"
            " VALUES (?,?,?,?,?,?,?)",
            [(pair, c.item_kind, ids[c.name], c.change_kind, c.detail, c.old, c.new) for c in changes],
        )
    return pair


def set_pair_group(conn: sqlite3.Connection, pair: int, group_id: int | None) -> None:
    """Record which group defines a stored pair (None: ad hoc)."""
    conn.execute("UPDATE diff_pairs SET group_id = ? WHERE id = ?", (group_id, pair))


def delete_diff_pairs(conn: sqlite3.Connection, pairs: list[int]) -> None:
    """Delete stored pairs and their changes, in one transaction."""
    with transaction(conn):
        for pair in pairs:
            _delete_pair(conn, pair)


def _delete_pair(conn: sqlite3.Connection, pair: int) -> None:
    conn.execute("DELETE FROM changes WHERE pair_id = ?", (pair,))
    conn.execute("DELETE FROM diff_pairs WHERE id = ?", (pair,))
