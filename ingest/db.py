"""The only module that writes SQL: applies schema.sql, stores a Build in one
transaction, maintains the lookup tables and deletes builds."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from importlib import resources
from pathlib import Path

from ingest.model import AttachFacts, Build, Layout, Prototype

SCHEMA_VERSION = 2


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
    if conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
    return conn


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing database (no schema changes)."""
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)


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


def _name_taken(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM builds WHERE name = ?", (name,)).fetchone() is not None


def _unique_name(conn: sqlite3.Connection, wanted: str) -> str:
    name, n = wanted, 1
    while _name_taken(conn, name):
        n += 1
        name = f"{wanted}~{n}"
    return name


def _layout_digest(layout: Layout) -> str:
    h = hashlib.sha1(f"{layout.kind}|{layout.size}".encode())
    for f in layout.fields:
        h.update(
            f"|{f.name}|{f.type_text}|{f.decl}|{f.bit_offset}|{f.bit_size}|{f.byte_size}|{f.parent}".encode()
        )
        if (
            f.canon_type is not None and f.canon_type != f.type_text
        ):  # same text, other meaning: another layout
            h.update(f"~{f.canon_type}".encode())
    for name, value in layout.values:
        h.update(f"|{name}={value}".encode())
    return h.hexdigest()


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
    ):
        conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (build,))


def delete_build(conn: sqlite3.Connection, build: int) -> None:
    """Remove one build entirely."""
    clear_build(conn, build)
    conn.execute("DELETE FROM builds WHERE id = ?", (build,))


def store_build(
    conn: sqlite3.Connection, build: Build, seconds: float, replace: bool = False, label: str | None = None
) -> int:
    """Insert the whole build in one transaction; returns its id."""
    info = build.info
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = find_build(conn, info.build_id)
        if old is not None and not replace:
            raise ValueError(f"build {info.build_id} is already stored as {old[1]}")
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
            build_pk = old[0]
            clear_build(conn, build_pk)
            name = label if label and label != old[1] and not _name_taken(conn, label) else old[1]
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

        first = _next_id(conn, "instances")
        instance_rows = [
            (
                first + k,
                build_pk,
                names(i.name),
                i.external,
                paths(i.decl_file),
                i.decl_line,
                paths(i.cu),
                i.inline,
                _addr(i.address),
                i.defined,
            )
            for k, i in enumerate(build.instances)
        ]
        attach = build.attach
        symbol_rows = [
            (
                build_pk,
                names(s.name),
                names(s.stem),
                " ".join(s.suffixes) or None,
                _addr(s.address),
                s.size,
                s.binding,
                s.section,
                *_attach_columns(attach.get(s.name)),
            )
            for s in build.symbols
        ]
        btf_funcs = build.btf_funcs if build.info.has_btf else None
        protos = _PrototypeStore(conn, texts)
        function_rows = [
            (
                names(f.name),
                build_pk,
                f.collision,
                f.inline,
                " ".join(f.suffixes) or None,
                f.n_instances,
                f.n_symbols,
                protos(f.prototype),
                f.prototype.source if f.prototype else None,
                *_attach_columns(attach.get(f.name)),
                None if btf_funcs is None else f.name in btf_funcs,
            )
            for f in build.functions
        ]
        layouts = _LayoutStore(conn, texts)
        type_rows = sorted({(names(x.name), build_pk, layouts(x), x.kind) for x in build.layouts})
        # Count what is stored: DWARF-only builds repeat identical layouts across units.
        conn.execute(
            "UPDATE builds SET n_structs = ? WHERE id = ?",
            (sum(1 for row in type_rows if row[3] != "enum"), build_pk),
        )
        # Parents before children: foreign keys are checked row by row.
        surface_rows = _surface_rows(build, build_pk, names, texts, long_texts, layouts)
        for store in (names, paths, texts, long_texts, protos, layouts):
            store.flush()
        conn.executemany(
            "INSERT INTO instances (id, build_id, name_id, external, decl_path_id, decl_line, cu_path_id,"
            " inline, address, defined) VALUES (?,?,?,?,?,?,?,?,?,?)",
            instance_rows,
        )
        conn.executemany(
            "INSERT INTO callers (callee_id, caller_id, kind, sites) VALUES (?,?,?,?)",
            [(first + c.callee, first + c.caller, c.kind, c.sites) for c in build.calls],
        )
        conn.executemany(
            "INSERT INTO symbols (build_id, name_id, stem_id, suffixes, address, size, binding, section,"
            " ftrace, kprobe_blocked) VALUES (?,?,?,?,?,?,?,?,?,?)",
            symbol_rows,
        )
        conn.executemany(
            "INSERT INTO functions (name_id, build_id, collision, inline, suffixes, n_instances, n_symbols,"
            " prototype_id, prototype_source, ftrace, kprobe_blocked, btf_func) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            function_rows,
        )
        conn.executemany("INSERT INTO types (name_id, build_id, layout_id, kind) VALUES (?,?,?,?)", type_rows)
        for table, rows in surface_rows.items():
            if rows:
                conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return build_pk


def _attach_columns(facts: AttachFacts | None) -> tuple[int | None, str | None]:
    """(ftrace, kprobe_blocked) columns; (None, None) when not recorded."""
    return (None, None) if facts is None else (int(facts.ftrace), facts.kprobe_blocked)


def _surface_rows(
    build: Build, build_pk: int, names: _Lookup, texts: _Lookup, long_texts: _Lookup, layouts: _LayoutStore
) -> dict[str, list[tuple]]:
    """Rows of the surface tables, in their column order (schema.sql)."""
    structs = {x.name: x for x in build.layouts if x.kind == "struct"}
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
            )
            for t in build.tracepoints
        ],
        "syscalls": [
            (build_pk, s.abi, s.number, names(s.name), names(s.symbol), names(s.table))
            for s in build.syscalls
        ],
        "lsm_hooks": [(names(h.name), build_pk, texts(h.prototype), int(h.bpf_lsm)) for h in build.lsm_hooks],
        "kfuncs": [
            (names(k.name), build_pk, k.source, " ".join(k.sets) or None, k.flags) for k in build.kfuncs
        ],
        "config_options": [(names(name), build_pk, value) for name, value in sorted(build.config.items())],
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
        canon_params = proto.canon_params or [None] * len(proto.params)
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
            self.rows.append(
                (
                    i,
                    digest,
                    proto.text,
                    self.texts(proto.return_type),
                    proto.variadic,
                    self.texts(proto.canon_return),
                )
            )
            self.params.extend(
                (i, k, name, self.texts(t), self.texts(c))
                for k, ((name, t), c) in enumerate(zip(proto.params, canon_params))
            )
        return i

    def flush(self) -> None:
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
            self.fields.extend(
                (
                    i,
                    f.position,
                    f.name,
                    self.texts(f.type_text),
                    self.texts(f.decl),
                    f.bit_offset,
                    f.bit_size,
                    f.byte_size,
                    f.parent,
                    self.texts(f.canon_type),
                )
                for f in layout.fields
            )
            self.values.extend(
                (i, k, name, value - (1 << 64) if value >= 1 << 63 else value)
                for k, (name, value) in enumerate(layout.values)
            )
        return i

    def flush(self) -> None:
        self.conn.executemany("INSERT INTO layouts (id, kind, size, digest) VALUES (?,?,?,?)", self.rows)
        self.conn.executemany(
            "INSERT INTO struct_fields (layout_id, position, name, type_id, decl_id, bit_offset, bit_size,"
            " byte_size, parent, canon_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            self.fields,
        )
        self.conn.executemany(
            "INSERT INTO enum_values (layout_id, position, name, value) VALUES (?,?,?,?)", self.values
        )


# --------------------------------------------------------------------------- builds by identity, groups


def find_release(
    conn: sqlite3.Connection, distro: str, release: str, arch: str, version: str | None = None
) -> tuple[int, str] | None:
    """(id, name) of a stored build of this distro kernel release and arch (and package version, if
    given), without reading the image: what `kernsurf build` checks before fetching."""
    sql = "SELECT id, name FROM builds WHERE distro = ? AND release = ? AND arch = ?"
    args: tuple = (distro, release, arch)
    if version is not None:
        sql, args = sql + " AND version = ?", args + (version,)
    row = conn.execute(sql + " ORDER BY id LIMIT 1", args).fetchone()
    return (row[0], row[1]) if row else None


def build_named(conn: sqlite3.Connection, name: str) -> int | None:
    """Id of the build with this display name, if stored."""
    row = conn.execute("SELECT id FROM builds WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


#: A group to store: (name, kind "series" | "variants", [(build id, display label), ...]).
GroupRows = tuple[str, str, list[tuple[int, str]]]


def store_groups(conn: sqlite3.Connection, groups: list[GroupRows]) -> None:
    """Replace the groups and their members with `groups`, in one transaction.

    Groups keep their id when their name is unchanged, so rows that refer to a
    group (e.g. computed differences) stay valid; groups not listed are deleted.
    Position follows the list order; member position 0 is a variants group's baseline.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
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
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def load_groups(conn: sqlite3.Connection) -> list[GroupRows]:
    """The stored groups in display order, members in position order."""
    out: list[GroupRows] = []
    for gid, name, kind in conn.execute("SELECT id, name, kind FROM groups ORDER BY position, id").fetchall():
        members = conn.execute(
            "SELECT build_id, label FROM group_members WHERE group_id = ? ORDER BY position", (gid,)
        ).fetchall()
        out.append((name, kind, [(b, label) for b, label in members]))
    return out


# --------------------------------------------------------------------------- search index (frontend)


def build_search_index(conn: sqlite3.Connection) -> int:
    """Refill the name_search index (schema.sql) with every function, type,
    tracepoint, syscall, LSM hook, kfunc and config option name, in one
    transaction; returns how many names it holds."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO name_search (name_search) VALUES ('delete-all')")
        conn.execute(
            "INSERT INTO name_search (rowid, name) SELECT id, name FROM names WHERE id IN"
            " (SELECT name_id FROM functions UNION SELECT name_id FROM types"
            " UNION SELECT name_id FROM tracepoints UNION SELECT name_id FROM syscalls"
            " UNION SELECT name_id FROM lsm_hooks UNION SELECT name_id FROM kfuncs"
            " UNION SELECT name_id FROM config_options)"
        )
        count = conn.execute("SELECT changes()").fetchone()[0]
        conn.execute("INSERT INTO name_search (name_search) VALUES ('optimize')")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return count


# --------------------------------------------------------------------------- differences (diff.py)


_ADDED_COLUMNS = (  # (table, column, declaration) added after the first release of the schema
    ("prototypes", "canon_return_id", "INTEGER REFERENCES type_texts(id)"),
    ("prototype_params", "canon_id", "INTEGER REFERENCES type_texts(id)"),
    ("struct_fields", "canon_id", "INTEGER REFERENCES type_texts(id)"),
    ("symbols", "ftrace", "INTEGER"),
    ("symbols", "kprobe_blocked", "TEXT"),
    ("functions", "ftrace", "INTEGER"),
    ("functions", "kprobe_blocked", "TEXT"),
    ("functions", "btf_func", "INTEGER"),
    *(
        ("builds", c, "INTEGER")
        for c in ("n_tracepoints", "n_syscalls", "n_lsm_hooks", "n_kfuncs", "n_config")
    ),
)
_REDEFINED_VIEWS = ("function_status",)  # views whose columns changed with schema version 2


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a database made by an older schema up to date: add the (nullable)
    new columns, whose old rows keep NULL ("not recorded"), and drop views that
    schema.sql then recreates with their new columns."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        return  # a new database
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 1
    if version >= SCHEMA_VERSION:
        return
    for table, column, declaration in _ADDED_COLUMNS:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        if columns and column not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    for view in _REDEFINED_VIEWS:
        conn.execute(f"DROP VIEW IF EXISTS {view}")
    # New item kinds widen the changes CHECK constraint, which SQLite cannot
    # alter: drop the stored diffs (group pairs are recomputed by the next
    # `kernsurf build`) and the vocabulary, which schema.sql then re-creates.
    conn.execute("DROP TABLE IF EXISTS changes")
    conn.execute("DELETE FROM diff_pairs")
    conn.execute("DELETE FROM change_kinds")
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))


def list_builds(conn: sqlite3.Connection) -> list[tuple[int, str, str, str | None]]:
    """(id, name, build-id, arch) of every stored build, oldest version first."""
    return conn.execute("SELECT id, name, build_id, arch FROM builds ORDER BY version_sort, name").fetchall()


def build_facts(conn: sqlite3.Connection, build: int) -> dict | None:
    """What a diff needs to know of a build: name, has_dwarf, has_symtab and a
    stamp that changes whenever the build is re-ingested."""
    row = conn.execute(
        "SELECT name, has_dwarf, has_symtab, sha256, ingested_at, n_tracepoints, n_config"
        " FROM builds WHERE id = ?",
        (build,),
    ).fetchone()
    if row is None:
        return None
    return {
        "id": build,
        "name": row[0],
        "has_dwarf": bool(row[1]),
        "has_symtab": bool(row[2]),
        "stamp": f"{build}:{row[3]}:{row[4]}",
        "surfaces": row[5] is not None,
        "has_config": bool(row[6]),
    }


def function_states(conn: sqlite3.Connection, build: int) -> list[tuple]:
    """(name_id, name, collision, inline, suffixes, n_symbols, prototype_id) of every function of a build."""
    return conn.execute(
        "SELECT f.name_id, n.name, f.collision, f.inline, f.suffixes, f.n_symbols, f.prototype_id"
        " FROM functions f JOIN names n ON n.id = f.name_id WHERE f.build_id = ?",
        (build,),
    ).fetchall()


def attach_states(conn: sqlite3.Connection, build: int) -> dict[int, tuple[str | None, str | None]]:
    """name_id -> (kprobe, fentry) texts of the function_status view for one build."""
    return {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT name_id, kprobe, fentry FROM function_status WHERE build_id = ?", (build,)
        )
    }


#: Per surface table: the SELECT giving (name_id, name, facts...) rows of one build.
_SURFACE_QUERIES = {
    "tracepoint": "SELECT t.name_id, n.name, c.name, t.struct_layout_id, f.name, x.text, r.text"
    " FROM tracepoints t JOIN names n ON n.id = t.name_id LEFT JOIN names c ON c.id = t.class_id"
    " LEFT JOIN names f ON f.id = t.func_id LEFT JOIN texts x ON x.id = t.print_fmt_id"
    " LEFT JOIN type_texts r ON r.id = t.raw_prototype_id WHERE t.build_id = ?",
    "syscall": "SELECT s.name_id, n.name, s.abi, s.number, y.name FROM syscalls s JOIN names n ON n.id = s.name_id"
    " JOIN names y ON y.id = s.symbol_id WHERE s.build_id = ?",
    "lsm_hook": "SELECT h.name_id, n.name, p.text, h.bpf_lsm FROM lsm_hooks h JOIN names n ON n.id = h.name_id"
    " LEFT JOIN type_texts p ON p.id = h.prototype_id WHERE h.build_id = ?",
    "kfunc": "SELECT k.name_id, n.name, k.flags, k.sets FROM kfuncs k JOIN names n ON n.id = k.name_id"
    " WHERE k.build_id = ?",
    "config": "SELECT c.name_id, n.name, c.value FROM config_options c JOIN names n ON n.id = c.name_id"
    " WHERE c.build_id = ?",
}


def surface_rows(conn: sqlite3.Connection, item_kind: str, build: int) -> list[tuple]:
    """(name_id, name, facts...) of one build's tracepoints, syscalls, LSM
    hooks, kfuncs or config options (see _SURFACE_QUERIES for the facts)."""
    return conn.execute(_SURFACE_QUERIES[item_kind], (build,)).fetchall()


def type_entries(conn: sqlite3.Connection, build: int) -> list[tuple]:
    """(name_id, name, kind, layout_id) of every named struct, union and enum of a build."""
    return conn.execute(
        "SELECT t.name_id, n.name, t.kind, t.layout_id FROM types t JOIN names n ON n.id = t.name_id"
        " WHERE t.build_id = ?",
        (build,),
    ).fetchall()


def _in_chunks(conn: sqlite3.Connection, sql: str, ids) -> list[tuple]:
    """Rows of `sql` (with one `{}` for a list of placeholders) for `ids`, 500 at a time."""
    ids = sorted(set(ids))
    out: list[tuple] = []
    for k in range(0, len(ids), 500):
        chunk = ids[k : k + 500]
        out.extend(conn.execute(sql.format(",".join("?" * len(chunk))), chunk))
    return out


def prototype_details(conn: sqlite3.Connection, ids) -> tuple[dict, dict]:
    """For prototype ids: {id: (text, return_type_id, canon_return_id, variadic)} and
    {id: [(position, name, type_id, canon_id), ...] in position order}."""
    protos = {
        r[0]: r[1:]
        for r in _in_chunks(
            conn,
            "SELECT id, text, return_type_id, canon_return_id, variadic FROM prototypes WHERE id IN ({})",
            ids,
        )
    }
    params: dict[int, list] = {i: [] for i in protos}
    for r in _in_chunks(
        conn,
        "SELECT prototype_id, position, name, type_id, canon_id FROM prototype_params"
        " WHERE prototype_id IN ({}) ORDER BY prototype_id, position",
        ids,
    ):
        params[r[0]].append(r[1:])
    return protos, params


def layout_details(conn: sqlite3.Connection, ids) -> tuple[dict, dict, dict]:
    """For layout ids: {id: size}, {id: [(position, name, type_id, canon_id, bit_offset,
    bit_size, parent), ...]} and {id: [(name, value), ...]}, in position order."""
    sizes = dict(_in_chunks(conn, "SELECT id, size FROM layouts WHERE id IN ({})", ids))
    fields: dict[int, list] = {i: [] for i in sizes}
    values: dict[int, list] = {i: [] for i in sizes}
    for r in _in_chunks(
        conn,
        "SELECT layout_id, position, name, type_id, canon_id, bit_offset, bit_size, parent"
        " FROM struct_fields WHERE layout_id IN ({}) ORDER BY layout_id, position",
        ids,
    ):
        fields[r[0]].append(r[1:])
    for r in _in_chunks(
        conn,
        "SELECT layout_id, name, value FROM enum_values WHERE layout_id IN ({}) ORDER BY layout_id, position",
        ids,
    ):
        values[r[0]].append(r[1:])
    return sizes, fields, values


def type_texts(conn: sqlite3.Connection, ids) -> dict[int, str]:
    """{id: text} of type_texts rows."""
    return dict(_in_chunks(conn, "SELECT id, text FROM type_texts WHERE id IN ({})", ids))


def group_pairs(conn: sqlite3.Connection) -> list[tuple[int, int, int]]:
    """(group id, build A, build B) of every pair the groups define: consecutive
    members of a series, the baseline (position 0) against each other member of
    variants. Groups in display order; a pair defined twice is listed once."""
    pairs: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int]] = set()
    for gid, kind in conn.execute("SELECT id, kind FROM groups ORDER BY position, id").fetchall():
        members = [
            b
            for (b,) in conn.execute(
                "SELECT build_id FROM group_members WHERE group_id = ? ORDER BY position", (gid,)
            )
        ]
        if kind == "series":
            candidates = list(zip(members, members[1:]))
        else:
            candidates = [(members[0], b) for b in members[1:]]
        for a, b in candidates:
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                pairs.append((gid, a, b))
    return pairs


def stored_pairs(conn: sqlite3.Connection) -> dict[tuple[int, int], tuple[int, int | None, str, int]]:
    """{(build A, build B): (pair id, group id, stamp, n_changes)} of the stored differences."""
    return {
        (a, b): (i, g, s, n)
        for i, a, b, g, s, n in conn.execute(
            "SELECT id, build_a, build_b, group_id, stamp, n_changes FROM diff_pairs"
        )
    }


#: One change to store: (item_kind, item name, change_kind, detail, old, new).
ChangeRow = tuple[str, str, str, str | None, str | None, str | None]


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
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = conn.execute(
            "SELECT id FROM diff_pairs WHERE build_a = ? AND build_b = ?", (build_a, build_b)
        ).fetchone()
        if old:
            conn.execute("DELETE FROM changes WHERE pair_id = ?", (old[0],))
            conn.execute("DELETE FROM diff_pairs WHERE id = ?", (old[0],))
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
        ids = dict(_in_chunks(conn, "SELECT name, id FROM names WHERE name IN ({})", {c[1] for c in changes}))
        if len(ids) < len({c[1] for c in changes}):  # names no build has (only when called by hand)
            names = _Lookup(conn, "names", "name")
            ids = {c[1]: names(c[1]) for c in changes}
            names.flush()
        rows = [
            (pair, item, ids[name], kind, detail, old_text, new_text)
            for item, name, kind, detail, old_text, new_text in changes
        ]
        conn.executemany(
            "INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)"
            " VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return pair


def set_pair_group(conn: sqlite3.Connection, pair: int, group_id: int | None) -> None:
    """Record which group defines a stored pair (None: ad hoc)."""
    conn.execute("UPDATE diff_pairs SET group_id = ? WHERE id = ?", (group_id, pair))


def delete_diff_pairs(conn: sqlite3.Connection, pairs: list[int]) -> None:
    """Delete stored pairs and their changes, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for pair in pairs:
            conn.execute("DELETE FROM changes WHERE pair_id = ?", (pair,))
            conn.execute("DELETE FROM diff_pairs WHERE id = ?", (pair,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def change_kinds(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, items) of the change vocabulary in display order (schema.sql)."""
    return conn.execute("SELECT name, items FROM change_kinds ORDER BY position").fetchall()
