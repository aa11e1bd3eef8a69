"""What the web pages read (ingest.web): builds and groups, one item's rows
per build, a diff pair's changes, the builds summary and the matrix states.

Every function takes a sqlite3.Connection and returns NamedTuples (or dicts
of them); the page builders never see a bare sqlite3 row.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from ingest.model import Field

#: A value a surface view row holds.
Value = str | int | float | None


# --------------------------------------------------------------------------- the database


def nonempty_sql(table: str) -> str:
    """SQL answering whether `table` (a name from metadata.yml, not user input) has a row."""
    return f"SELECT EXISTS (SELECT 1 FROM [{table}])"


def tables(conn: sqlite3.Connection) -> set[str]:
    """Names of the database's tables and views."""
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def records_attachability(conn: sqlite3.Connection) -> bool:
    """Whether the functions table has the attachability columns (schema 2)."""
    return _has_column(conn, "functions", "ftrace")


def records_modules(conn: sqlite3.Connection) -> bool:
    """Whether the database has the modules table and module_id columns (schema 5)."""
    return _has_column(conn, "functions", "module_id")


def records_kfunc_modules(conn: sqlite3.Connection) -> bool:
    """Whether the kfuncs table has module_id (added within schema 5)."""
    return _has_column(conn, "kfuncs", "module_id")


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether `table` (a name from this module, not user input) has `column`."""
    return column in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _module_name(alias: str, conn: sqlite3.Connection) -> str:
    """SQL: the module name of `alias`.module_id (NULL: vmlinux), or NULL before schema 5."""
    if not records_modules(conn):
        return "NULL"
    return (
        f"(SELECT mn.name FROM modules m JOIN names mn ON mn.id = m.name_id WHERE m.id = {alias}.module_id)"
    )


class BuildRow(NamedTuple):
    id: int
    name: str
    has_dwarf: bool
    has_btf: bool
    has_symtab: bool
    lacks: str | None
    release: str | None
    version: str | None
    arch: str | None
    flavor: str | None
    modules_read: bool = False  # builds.n_modules is not NULL


def builds(conn: sqlite3.Connection) -> list[BuildRow]:
    """Every build, in version order."""
    return [
        BuildRow(
            id=r[0],
            name=r[1],
            has_dwarf=bool(r[2]),
            has_btf=bool(r[3]),
            has_symtab=bool(r[4]),
            lacks=r[5],
            release=r[6],
            version=r[7],
            arch=r[8],
            flavor=r[9],
            modules_read=r[10] is not None,
        )
        for r in conn.execute(
            "SELECT id, name, has_dwarf, has_btf, has_symtab, lacks, release, version, arch, flavor,"
            f" {'n_modules' if _has_column(conn, 'builds', 'n_modules') else 'NULL'}"
            " FROM builds ORDER BY version_sort IS NULL, version_sort, name, id"
        )
    ]


class MemberRow(NamedTuple):
    group_id: int
    group: str
    kind: str
    build_id: int
    label: str


def group_members(conn: sqlite3.Connection) -> list[MemberRow]:
    """Every member of every group, groups and members in order."""
    return [
        MemberRow(*r)
        for r in conn.execute(
            "SELECT g.id, g.name, g.kind, gm.build_id, gm.label FROM groups g"
            " JOIN group_members gm ON gm.group_id = g.id ORDER BY g.position, g.id, gm.position"
        )
    ]


def group_names(conn: sqlite3.Connection) -> list[str]:
    """Names of the groups, in order."""
    return [r[0] for r in conn.execute("SELECT name FROM groups ORDER BY position, id")]


def name_id(conn: sqlite3.Connection, name: str) -> int | None:
    """The names row of `name`, if any."""
    row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def name_ids(conn: sqlite3.Connection, names: list[str]) -> dict[str, int]:
    """name -> names row, for the names that exist."""
    return dict(
        conn.execute(
            "SELECT name, id FROM names WHERE name IN (SELECT value FROM json_each(?))", (json.dumps(names),)
        )
    )


def has_function(conn: sqlite3.Connection, nid: int) -> bool:
    """Whether some build has a function of this name."""
    return conn.execute("SELECT 1 FROM functions WHERE name_id = ? LIMIT 1", (nid,)).fetchone() is not None


def has_type(conn: sqlite3.Connection, nid: int) -> bool:
    """Whether some build has a struct, union or enum of this name."""
    return conn.execute("SELECT 1 FROM types WHERE name_id = ? LIMIT 1", (nid,)).fetchone() is not None


# --------------------------------------------------------------------------- /function/<name>


class FunctionRow(NamedTuple):
    build_id: int
    collision: str | None
    inline: str | None
    suffixes: tuple[str, ...]
    n_instances: int
    n_symbols: int
    prototype_id: int | None
    prototype: str | None
    prototype_source: str | None
    module: str | None = None  # the module it lives in; None: vmlinux (or modules not read)


def functions(conn: sqlite3.Connection, nid: int) -> list[FunctionRow]:
    """The function `nid` in each build that has it."""
    return [
        FunctionRow(
            build_id=r[0],
            collision=r[1],
            inline=r[2],
            suffixes=tuple((r[3] or "").split()),
            n_instances=r[4],
            n_symbols=r[5],
            prototype_id=r[6],
            prototype=r[7],
            prototype_source=r[8],
            module=r[9],
        )
        for r in conn.execute(
            "SELECT f.build_id, f.collision, f.inline, f.suffixes, f.n_instances, f.n_symbols,"
            f" f.prototype_id, p.text, f.prototype_source, {_module_name('f', conn)} FROM functions f"
            " LEFT JOIN prototypes p ON p.id = f.prototype_id WHERE f.name_id = ?",
            (nid,),
        )
    ]


class AttachRow(NamedTuple):
    build_id: int
    kprobe: str | None
    fentry: str | None
    ftrace: int | None


def attachability(conn: sqlite3.Connection, nid: int) -> list[AttachRow]:
    """kprobe and fentry verdicts ("✓" or "✗ (why)") and ftrace of the function per build."""
    return [
        AttachRow(*r)
        for r in conn.execute(
            "SELECT build_id, kprobe, fentry, ftrace FROM function_status WHERE name_id = ?", (nid,)
        )
    ]


class InstanceRow(NamedTuple):
    id: int
    build_id: int
    external: bool
    decl_path: str | None
    decl_line: int | None
    cu: str | None
    inline: int | None
    address: int | None
    defined: bool
    module: str | None = None  # None: vmlinux


def instances(conn: sqlite3.Connection, nid: int) -> list[InstanceRow]:
    """DWARF instances of the name, per build: definitions with an address first, then by CU."""
    return [
        InstanceRow(
            id=r[0],
            build_id=r[1],
            external=bool(r[2]),
            decl_path=r[3],
            decl_line=r[4],
            cu=r[5],
            inline=r[6],
            address=r[7],
            defined=bool(r[8]),
            module=r[9],
        )
        for r in conn.execute(
            "SELECT i.id, i.build_id, i.external, dp.path, i.decl_line, cp.path, i.inline, i.address,"
            f" i.defined, {_module_name('i', conn)} FROM instances i LEFT JOIN paths dp ON dp.id = i.decl_path_id"
            " LEFT JOIN paths cp ON cp.id = i.cu_path_id WHERE i.name_id = ?"
            " ORDER BY i.build_id, i.address IS NULL, cp.path IS NULL, cp.path, i.id",
            (nid,),
        )
    ]


class CallerRow(NamedTuple):
    callee_id: int
    kind: str  # "direct" or "inline"
    sites: int
    caller: str
    cu: str | None
    total: int  # callers of this kind the callee has


def callers(conn: sqlite3.Connection, callee_ids: Iterable[int], limit: int) -> list[CallerRow]:
    """The first `limit` callers per instance and kind, by CU and name."""
    return [
        CallerRow(*r)
        for r in conn.execute(
            "SELECT callee_id, kind, sites, caller, cu, total FROM (SELECT c.callee_id, c.kind, c.sites,"
            " rn.name AS caller, rp.path AS cu, count(*) OVER (PARTITION BY c.callee_id, c.kind) AS total,"
            " row_number() OVER (PARTITION BY c.callee_id, c.kind ORDER BY rp.path, rn.name, c.caller_id)"
            " AS k FROM callers c JOIN instances r ON r.id = c.caller_id"
            " JOIN names rn ON rn.id = r.name_id LEFT JOIN paths rp ON rp.id = r.cu_path_id"
            " WHERE c.callee_id IN (SELECT value FROM json_each(?))) WHERE k <= ?",
            (json.dumps(list(callee_ids)), limit),
        )
    ]


class SymbolRow(NamedTuple):
    build_id: int
    name: str
    address: int
    size: int | None
    binding: str
    section: str | None
    module: str | None = None  # None: vmlinux


def symbols(conn: sqlite3.Connection, stem_id: int) -> list[SymbolRow]:
    """STT_FUNC symbols whose stem is the name, per build by address."""
    return [
        SymbolRow(*r)
        for r in conn.execute(
            "SELECT s.build_id, n.name, s.address, s.size, s.binding, s.section,"
            f" {_module_name('s', conn)} FROM symbols s"
            " JOIN names n ON n.id = s.name_id WHERE s.stem_id = ? ORDER BY s.build_id, s.address",
            (stem_id,),
        )
    ]


# --------------------------------------------------------------------------- /struct/<name>


class TypeRow(NamedTuple):
    build_id: int
    layout_id: int
    kind: str
    size: int
    module: str | None = None  # None: vmlinux has the name


def types(conn: sqlite3.Connection, nid: int) -> list[TypeRow]:
    """The layouts named `nid` per build: structs and unions before enums."""
    return [
        TypeRow(*r)
        for r in conn.execute(
            f"SELECT t.build_id, t.layout_id, t.kind, l.size, {_module_name('t', conn)}"
            " FROM types t JOIN layouts l ON l.id = t.layout_id"
            " WHERE t.name_id = ? ORDER BY t.build_id, t.kind = 'enum', t.kind, t.layout_id",
            (nid,),
        )
    ]


def layout_fields(conn: sqlite3.Connection, layout_ids: Iterable[int]) -> dict[int, list[Field]]:
    """layout id -> its members in order."""
    out: dict[int, list[Field]] = defaultdict(list)
    for lid, pos, name, type_text, decl, bit_offset, bit_size, byte_size, parent in conn.execute(
        "SELECT sf.layout_id, sf.position, sf.name, tt.text, dt.text, sf.bit_offset, sf.bit_size,"
        " sf.byte_size, sf.parent FROM struct_fields sf JOIN type_texts tt ON tt.id = sf.type_id"
        " JOIN type_texts dt ON dt.id = sf.decl_id"
        " WHERE sf.layout_id IN (SELECT value FROM json_each(?)) ORDER BY sf.layout_id, sf.position",
        (json.dumps(sorted(layout_ids)),),
    ):
        out[lid].append(
            Field(
                position=pos,
                name=name,
                type_text=type_text,
                decl=decl,
                bit_offset=bit_offset,
                bit_size=bit_size,
                byte_size=byte_size,
                parent=parent,
            )
        )
    return out


def enum_values(conn: sqlite3.Connection, layout_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
    """layout id -> its (enumerator, value) pairs in order."""
    out: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for lid, name, value in conn.execute(
        "SELECT layout_id, name, value FROM enum_values WHERE layout_id IN (SELECT value FROM json_each(?))"
        " ORDER BY layout_id, position",
        (json.dumps(sorted(layout_ids)),),
    ):
        out[lid].append((name, value))
    return out


# --------------------------------------------------------------------------- /module/<name>


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


# --------------------------------------------------------------------------- surface pages


class SurfaceRow(NamedTuple):
    build_id: int
    facts: dict[str, Value]  # the view's columns, without build and name columns


#: The surface views a page may read (their names are put into SQL).
SURFACE_VIEWS = frozenset(("tracepoint_list", "syscall_list", "lsm_hook_list", "kfunc_list", "config_list"))


def surface_rows(conn: sqlite3.Connection, view: str, nid: int) -> list[SurfaceRow]:
    """The rows of a surface view (SURFACE_VIEWS) for one name, in every build."""
    if view not in SURFACE_VIEWS:
        raise ValueError(f"not a surface view: {view}")
    cursor = conn.execute(f"SELECT * FROM {view} WHERE name_id = ?", (nid,))
    columns = [d[0] for d in cursor.description]
    out = []
    for r in cursor:
        facts = dict(zip(columns, r))
        out.append(
            SurfaceRow(
                build_id=facts["build_id"],
                facts={k: v for k, v in facts.items() if k not in ("build", "name", "build_id", "name_id")},
            )
        )
    return out


# --------------------------------------------------------------------------- differences


class PairRow(NamedTuple):
    id: int
    build_a: int
    build_b: int


def diff_pairs(conn: sqlite3.Connection) -> list[PairRow]:
    """Every stored pair: group pairs in group order, then ad-hoc ones."""
    return [
        PairRow(*r)
        for r in conn.execute(
            "SELECT id, build_a, build_b FROM diff_pairs ORDER BY group_id IS NULL, group_id, id"
        )
    ]


class ChangeCount(NamedTuple):
    item: str
    change: str
    n_changes: int
    n_items: int  # distinct items changed


#: Functions first, then structs, unions, enums (an ORDER BY term; `c` is the changes alias).
_ITEM_ORDER = "CASE c.item_kind WHEN 'function' THEN 0 WHEN 'struct' THEN 1 WHEN 'union' THEN 2 ELSE 3 END"


def change_counts(conn: sqlite3.Connection, pair: int) -> list[ChangeCount]:
    """Changes and distinct items per item kind and change kind of one pair."""
    return [
        ChangeCount(*r)
        for r in conn.execute(
            "SELECT c.item_kind, c.change_kind, count(*), count(DISTINCT c.name_id) FROM changes c"
            " LEFT JOIN change_kinds k ON k.name = c.change_kind WHERE c.pair_id = ?"
            f" GROUP BY c.item_kind, c.change_kind ORDER BY {_ITEM_ORDER}, min(k.position)",
            (pair,),
        )
    ]


class ChangeFilter(NamedTuple):
    item: str | None = None  # item kind
    change: str | None = None  # change kind
    name: str | None = None  # substring of the item's name


def _where(pair: int, only: ChangeFilter) -> tuple[str, list[object]]:
    where: list[str] = ["c.pair_id = ?"]
    params: list[object] = [pair]
    if only.item:
        where.append("c.item_kind = ?")
        params.append(only.item)
    if only.change:
        where.append("c.change_kind = ?")
        params.append(only.change)
    if only.name:
        where.append("instr(n.name, ?) > 0")
        params.append(only.name)
    base = (
        "FROM changes c JOIN names n ON n.id = c.name_id LEFT JOIN change_kinds k ON k.name = c.change_kind"
        " WHERE " + " AND ".join(where)
    )
    return base, params


def count_changes(conn: sqlite3.Connection, pair: int, only: ChangeFilter) -> int:
    """How many changes of the pair pass the filter."""
    base, params = _where(pair, only)
    return conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]


class ChangeRow(NamedTuple):
    item: str
    name: str
    change: str
    detail: str | None
    old: str | None
    new: str | None


def changes(
    conn: sqlite3.Connection, pair: int, only: ChangeFilter, limit: int, offset: int
) -> list[ChangeRow]:
    """One page of the pair's changes, by item kind, name and change kind; old and
    new that the stored row leaves out (a function's prototype) come from change_list."""
    base, params = _where(pair, only)
    out = []
    for item, name, change, detail, old, new, nid in conn.execute(
        f"SELECT c.item_kind, n.name, c.change_kind, c.detail, c.old, c.new, c.name_id {base}"
        f" ORDER BY {_ITEM_ORDER}, n.name, k.position, c.detail LIMIT ? OFFSET ?",
        params + [limit, offset],
    ):
        if old is None and new is None:
            old, new = conn.execute(
                "SELECT old, new FROM change_list WHERE pair_id = ? AND name_id = ? AND change_kind = ?"
                " AND detail IS ? LIMIT 1",
                (pair, nid, change, detail),
            ).fetchone() or (None, None)
        out.append(ChangeRow(item=item, name=name, change=change, detail=detail, old=old, new=new))
    return out


class ItemChange(NamedTuple):
    pair_id: int
    kind: str
    change: str
    detail: str | None
    old: str | None
    new: str | None


def item_changes(conn: sqlite3.Connection, nid: int, kinds: tuple[str, ...]) -> list[ItemChange]:
    """Every stored change of one item (of these item kinds), per pair in vocabulary order."""
    return [
        ItemChange(*r)
        for r in conn.execute(
            "SELECT c.pair_id, c.item_kind, c.change_kind, c.detail, c.old, c.new FROM change_list c"
            " LEFT JOIN change_kinds k ON k.name = c.change_kind"
            f" WHERE c.name_id = ? AND c.item_kind IN ({','.join('?' * len(kinds))})"
            " ORDER BY c.pair_id, k.position, c.detail",
            (nid, *kinds),
        )
    ]


# --------------------------------------------------------------------------- /builds


class BuildSummary(NamedTuple):
    """A row of the build_summary view (schema.sql)."""

    build_id: int
    functions: int
    full_inline: int
    selective_inline: int
    declared_only: int
    transformed: int
    collisions: int
    duplicates: int
    structs: int
    unions: int
    enums: int
    symbols: int | None
    kprobe_ok: int | None  # None: attachability not recorded
    fentry_ok: int | None
    notrace: int | None
    surfaces_recorded: bool
    trace_events: int
    raw_tracepoints: int
    syscalls: int
    compat_syscalls: int
    lsm_hooks: int
    kfuncs: int
    config_options: int
    variables: int | None  # None: variables not recorded
    modules: int | None  # None: modules not read
    module_functions: int | None


def build_summaries(conn: sqlite3.Connection) -> dict[int, BuildSummary]:
    """build id -> its counts (the view the builds_summary canned query reads too)."""
    out = {}
    for r in conn.execute(f"SELECT {', '.join(BuildSummary._fields)} FROM build_summary"):
        s = BuildSummary(*r)
        out[s.build_id] = s._replace(surfaces_recorded=bool(s.surfaces_recorded))
    return out


# --------------------------------------------------------------------------- /matrix


class FunctionState(NamedTuple):
    name_id: int
    build_id: int
    collision: str | None
    inline: str | None
    suffixes: tuple[str, ...]
    prototype_id: int | None


def function_states(conn: sqlite3.Connection, nids: Iterable[int]) -> list[FunctionState]:
    """Status of these functions in every build that has them."""
    return [
        FunctionState(
            name_id=r[0],
            build_id=r[1],
            collision=r[2],
            inline=r[3],
            suffixes=tuple((r[4] or "").split()),
            prototype_id=r[5],
        )
        for r in conn.execute(
            "SELECT name_id, build_id, collision, inline, suffixes, prototype_id FROM functions"
            " WHERE name_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(nids)),),
        )
    ]


class TypeLayout(NamedTuple):
    name_id: int
    build_id: int
    layout_id: int


def type_layouts(conn: sqlite3.Connection, nids: Iterable[int]) -> list[TypeLayout]:
    """Layouts of these type names in every build that has them."""
    return [
        TypeLayout(*r)
        for r in conn.execute(
            "SELECT name_id, build_id, layout_id FROM types WHERE name_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(nids)),),
        )
    ]


class SurfacePresence(NamedTuple):
    """A name as a surface of one build (the /matrix rows that are no function or type)."""

    name_id: int
    build_id: int
    kind: str  # tracepoint, syscall, lsm_hook, kfunc, config, variable
    fact: str | None  # the event's system, the syscall's ABIs, the kfunc's module, the option's value


#: The /matrix surface kinds, in the order a name that is several is shown as.
SURFACE_KINDS = ("tracepoint", "syscall", "lsm_hook", "kfunc", "variable", "config")


def surface_presence(conn: sqlite3.Connection, nids: Iterable[int]) -> list[SurfacePresence]:
    """Every build in which these names are a trace event, syscall, LSM hook,
    kfunc (with the module registering it), kernel variable or config option."""
    wanted = "(SELECT value FROM json_each(?))"
    kfunc_module = _module_name("kfuncs", conn) if records_kfunc_modules(conn) else "NULL"
    sql = " UNION ALL ".join(
        (
            f"SELECT name_id, build_id, 'tracepoint', system FROM tracepoints WHERE name_id IN {wanted}",
            "SELECT name_id, build_id, 'syscall', group_concat(abi, ' ') FROM syscalls"
            f" WHERE name_id IN {wanted} GROUP BY name_id, build_id",
            f"SELECT name_id, build_id, 'lsm_hook', NULL FROM lsm_hooks WHERE name_id IN {wanted}",
            f"SELECT name_id, build_id, 'kfunc', {kfunc_module} FROM kfuncs WHERE name_id IN {wanted}",
            f"SELECT DISTINCT name_id, build_id, 'variable', NULL FROM variables WHERE name_id IN {wanted}",
            f"SELECT name_id, build_id, 'config', value FROM config_options WHERE name_id IN {wanted}",
        )
    )
    ids = json.dumps(list(nids))
    return [SurfacePresence(*r) for r in conn.execute(sql, (ids,) * 6)]


class SurfacesRecorded(NamedTuple):
    """What a build records, for telling absent from not recorded."""

    surfaces: bool  # trace events, syscalls, LSM hooks, kfuncs
    variables: bool
    config: bool


def surfaces_recorded(conn: sqlite3.Connection) -> dict[int, SurfacesRecorded]:
    """build id -> what it records."""
    return {
        r[0]: SurfacesRecorded(surfaces=bool(r[1]), variables=bool(r[2]), config=bool(r[3]))
        for r in conn.execute(
            "SELECT id, n_tracepoints IS NOT NULL, n_variables IS NOT NULL, coalesce(n_config, 0) > 0 FROM builds"
        )
    }
