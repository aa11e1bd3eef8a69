"""What `kernsurf check` reads (ingest.bpf.check): the builds and groups to
check against, and per build the facts one dependency's verdict rests on.

Items are asked for by name; every query finds the name's id the same way
(_NAME_ID, a subquery: no round trip of its own). Each SELECT lists the
columns in the order of the NamedTuple it fills.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import NamedTuple

#: The id of the name given as the next parameter (NULL when no build has it: no row matches).
_NAME_ID = "(SELECT id FROM names WHERE name = ?)"


# --------------------------------------------------------------------------- builds and groups


def records_surfaces(conn: sqlite3.Connection) -> bool:
    """Whether the builds table has the columns `kernsurf check` needs (n_tracepoints)."""
    return "n_tracepoints" in {row[1] for row in conn.execute("PRAGMA table_info(builds)")}


class GroupMember(NamedTuple):
    group_id: int
    group: str
    kind: str  # series or variants
    build_id: int
    build: str
    label: str


def group_members(conn: sqlite3.Connection) -> list[GroupMember]:
    """Every member of every group, groups in display order, members in group order."""
    rows = conn.execute(
        "SELECT g.id, g.name, g.kind, m.build_id, b.name, m.label FROM groups g"
        " JOIN group_members m ON m.group_id = g.id JOIN builds b ON b.id = m.build_id"
        " ORDER BY g.position, g.id, m.position"
    )
    return list(map(GroupMember._make, rows))


class BuildName(NamedTuple):
    id: int
    name: str


def build_names(conn: sqlite3.Connection) -> list[BuildName]:
    """Every build, oldest version first."""
    return list(map(BuildName._make, conn.execute("SELECT id, name FROM builds ORDER BY version_sort, name")))


class BuildFacts(NamedTuple):
    """What a build records, which decides whether a verdict can be given."""

    has_dwarf: bool
    has_btf: bool
    has_symtab: bool
    surfaces: bool  # attachability and surfaces were recorded (n_tracepoints set)
    has_config: bool
    arch: str | None = None
    ftrace_recorded: bool = True  # symbols carry ftrace facts (False: a BTF blob with kallsyms)
    events_recorded: bool = True  # trace events were read (False: a BTF blob: raw tracepoints only)
    config: dict[str, str] = {}  # the values of the options asked for (config gates)
    # The rows of a layout, shared by every build of one evaluation (layouts are
    # interned across builds); None: read them from the database each time.
    members: Callable[[int], list[MemberRow]] | None = None
    modules_read: bool = False  # the build's loadable modules were read (builds.n_modules set)
    # Every module of the build was read (False: the running system's loaded ones only).
    modules_complete: bool = True
    blacklist_recorded: bool = True  # False: ftrace facts without the kprobe blacklist (build_sources)
    syscalls_recorded: bool = True  # False: no syscall table was read (a BTF-only input; build_sources)


def build_facts(conn: sqlite3.Connection, build: int, options: Sequence[str] = ()) -> BuildFacts:
    """What build `build` records, with the values of config `options`."""
    row = conn.execute(
        "SELECT has_dwarf, has_btf, has_symtab, n_tracepoints, n_config, arch,"
        " EXISTS (SELECT 1 FROM symbols WHERE build_id = b.id AND ftrace IS NOT NULL),"
        " EXISTS (SELECT 1 FROM tracepoints WHERE build_id = b.id AND system IS NOT NULL)"
        " FROM builds b WHERE id = ?",
        (build,),
    ).fetchone()
    config = conn.execute(
        # CROSS JOIN: the few names asked for first, then their rows by primary key
        "SELECT n.name, c.value FROM names n CROSS JOIN config_options c"
        " WHERE n.name IN (SELECT value FROM json_each(?)) AND c.name_id = n.id AND c.build_id = ?",
        (json.dumps(list(options)), build),
    )
    modules_read = False
    if "n_modules" in {r[1] for r in conn.execute("PRAGMA table_info(builds)")}:
        found = conn.execute("SELECT n_modules IS NOT NULL FROM builds WHERE id = ?", (build,)).fetchone()
        modules_read = bool(found and found[0])
    sources = _sources(conn, build)
    return BuildFacts(
        modules_read=modules_read,
        modules_complete=not (sources.get("modules") or "").startswith("loaded"),
        blacklist_recorded=sources.get("kprobe_blacklist", "") is not None,
        syscalls_recorded=sources.get("syscalls", "") is not None,
        has_dwarf=bool(row[0]),
        has_btf=bool(row[1]),
        has_symtab=bool(row[2]),
        surfaces=row[3] is not None,
        has_config=bool(row[4]),
        arch=row[5],
        ftrace_recorded=bool(row[6]),
        events_recorded=bool(row[7]),
        config=dict(config.fetchall()),
    )


def _sources(conn: sqlite3.Connection, build: int) -> dict[str, str | None]:
    """The build's fact sources (ingest.origins.facts); empty for a database or build without them."""
    try:
        return dict(conn.execute("SELECT fact, source FROM build_sources WHERE build_id = ?", (build,)))
    except sqlite3.OperationalError:  # a database made before build_sources, opened read-only
        return {}


# --------------------------------------------------------------------------- functions and symbols


class FunctionFacts(NamedTuple):
    """A function's row in one build: how it was compiled and whether probes attach."""

    inline: str | None  # No, Selective, Full, Declared only
    collision: str | None  # Unique Global, Unique Static, ...
    n_symbols: int
    suffixes: str | None  # suffixes of its transformed copies (isra, constprop, ...)
    ftrace: int | None  # 1: ftrace can patch its entry, 0: notrace, None: no symbol of its own
    kprobe_blocked: str | None  # why kprobes refuse it, None when they do not
    btf_func: int | None  # 1: a BTF FUNC names it


def function(conn: sqlite3.Connection, build: int, name: str) -> FunctionFacts | None:
    """The function named `name` in `build`, None when the build has none."""
    row = conn.execute(
        "SELECT inline, collision, n_symbols, suffixes, ftrace, kprobe_blocked, btf_func FROM functions"
        f" WHERE build_id = ? AND name_id = {_NAME_ID}",
        (build, name),
    ).fetchone()
    return FunctionFacts._make(row) if row else None


def _home(conn: sqlite3.Connection, table: str, build: int, name: str) -> str | None:
    """The module whose row of `table` (functions, tracepoints, kfuncs) holds
    `name` on `build`; None: vmlinux's, or no row."""
    row = conn.execute(
        f"SELECT n.name FROM {table} x JOIN modules m ON m.id = x.module_id JOIN names n ON n.id = m.name_id"
        f" WHERE x.build_id = ? AND x.name_id = {_NAME_ID}",
        (build, name),
    ).fetchone()
    return row[0] if row else None


def function_home(conn: sqlite3.Connection, build: int, name: str) -> str | None:
    """The module function `name` lives in on `build` (functions.module_id), None: vmlinux.
    Only for builds whose modules were read (BuildFacts.modules_read)."""
    return _home(conn, "functions", build, name)


def tracepoint_home(conn: sqlite3.Connection, build: int, name: str) -> str | None:
    """The module defining trace event `name` on `build`, None: vmlinux (modules read only)."""
    return _home(conn, "tracepoints", build, name)


def module_chain(conn: sqlite3.Connection, build: int, module: str) -> list[str]:
    """`module` and every module it depends on (.modinfo depends=, transitively),
    in the order found: what must be loaded for its code to run."""
    chain, todo = [module], [module]
    while todo:  # one module at a time: a build has thousands, a chain a handful
        row = conn.execute(
            f"SELECT depends FROM modules WHERE build_id = ? AND name_id = {_NAME_ID}", (build, todo.pop(0))
        ).fetchone()
        for dep in ((row[0] if row else None) or "").split(","):
            if dep and dep not in chain:
                chain.append(dep)
                todo.append(dep)
    return chain


def module_count(conn: sqlite3.Connection, build: int) -> int:
    """How many modules of `build` were read (unreadable ones included)."""
    return conn.execute("SELECT count(*) FROM modules WHERE build_id = ?", (build,)).fetchone()[0]


def function_anywhere(conn: sqlite3.Connection, name: str) -> bool:
    """Whether any build of the database has a function named `name`."""
    row = conn.execute(f"SELECT 1 FROM functions WHERE name_id = {_NAME_ID} LIMIT 1", (name,))
    return row.fetchone() is not None


def defining_cu_in(conn: sqlite3.Connection, name: str, build: int) -> str | None:
    """A compile unit that defines `name` on another build and is built into
    `build`'s vmlinux (some instance of `build` has it), None when there is none."""
    row = conn.execute(
        "SELECT p.path FROM (SELECT DISTINCT cu_path_id FROM instances"
        f"  WHERE name_id = {_NAME_ID} AND build_id != ? AND defined AND cu_path_id IS NOT NULL) d"
        " JOIN paths p ON p.id = d.cu_path_id"
        " WHERE EXISTS (SELECT 1 FROM instances i WHERE i.build_id = ? AND i.cu_path_id = d.cu_path_id)"
        " LIMIT 1",
        (name, build, build),
    ).fetchone()
    return row[0] if row else None


def has_exact_symbol(conn: sqlite3.Connection, build: int, name: str) -> bool:
    """Whether `build` has a symbol named exactly `name` (its own stem)."""
    row = conn.execute(
        f"SELECT 1 FROM symbols WHERE stem_id = {_NAME_ID} AND build_id = ? AND name_id = stem_id LIMIT 1",
        (name, build),
    )
    return row.fetchone() is not None


class SymbolState(NamedTuple):
    ftrace: int | None
    kprobe_blocked: str | None


def symbols(conn: sqlite3.Connection, build: int, name: str) -> list[SymbolState]:
    """The ELF symbols named exactly `name` in `build` (a clone such as foo.isra.0)."""
    rows = conn.execute(
        f"SELECT ftrace, kprobe_blocked FROM symbols WHERE build_id = ? AND name_id = {_NAME_ID}",
        (build, name),
    )
    return list(map(SymbolState._make, rows))


class NamedSymbol(NamedTuple):
    name: str
    kprobe_blocked: str | None


def symbols_from(conn: sqlite3.Connection, build: int, prefix: str, glob: str = "*") -> list[NamedSymbol]:
    """The ELF symbols of `build` whose name starts with `prefix` and matches
    the SQLite GLOB pattern `glob` (filtered in SQLite, not row by row in Python)."""
    rows = conn.execute(
        "SELECT n.name, s.kprobe_blocked FROM symbols s JOIN names n ON n.id = s.name_id"
        " WHERE s.build_id = ? AND n.name >= ? AND n.name < ? AND n.name GLOB ?",
        (build, prefix, prefix + "\U0010ffff", glob),
    )
    return list(map(NamedSymbol._make, rows))


def glob_count(conn: sqlite3.Connection, prefix: str, glob: str) -> int:
    """How many ELF symbols of the build that has the most match the SQLite GLOB
    `glob` (names starting with `prefix`): what a glob dependency makes check read."""
    row = conn.execute(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM symbols s JOIN names n ON n.id = s.name_id"
        " WHERE n.name >= ? AND n.name < ? AND n.name GLOB ? GROUP BY s.build_id)",
        (prefix, prefix + "\U0010ffff", glob),
    ).fetchone()
    return row[0] or 0


# --------------------------------------------------------------------------- surfaces


class Tracepoint(NamedTuple):
    system: str | None  # None: a raw tracepoint only
    raw_prototype_id: int | None  # None: no BTF typedef btf_trace_<name>


def tracepoint(conn: sqlite3.Connection, build: int, name: str) -> Tracepoint | None:
    """The tracepoint named `name` in `build`, None when absent."""
    row = conn.execute(
        f"SELECT system, raw_prototype_id FROM tracepoints WHERE build_id = ? AND name_id = {_NAME_ID}",
        (build, name),
    ).fetchone()
    return Tracepoint._make(row) if row else None


def tracepoint_anywhere(conn: sqlite3.Connection, name: str) -> bool:
    """Whether any build of the database has a tracepoint named `name`."""
    row = conn.execute(f"SELECT 1 FROM tracepoints WHERE name_id = {_NAME_ID} LIMIT 1", (name,))
    return row.fetchone() is not None


def lsm_hook_attaches(conn: sqlite3.Connection, build: int, name: str) -> bool | None:
    """Whether BPF LSM programs attach to hook `name` (a bpf_lsm_<name> BTF
    FUNC exists); None when the build has no such hook."""
    row = conn.execute(
        f"SELECT bpf_lsm FROM lsm_hooks WHERE build_id = ? AND name_id = {_NAME_ID}", (build, name)
    ).fetchone()
    return bool(row[0]) if row else None


def syscall_number(conn: sqlite3.Connection, build: int, name: str) -> int | None:
    """The native syscall number of `name` in `build`, None when absent."""
    row = conn.execute(
        f"SELECT number FROM syscalls WHERE build_id = ? AND abi = 'native' AND name_id = {_NAME_ID}",
        (build, name),
    ).fetchone()
    return row[0] if row else None


def is_kfunc(conn: sqlite3.Connection, build: int, name: str) -> bool:
    """Whether `name` is a kfunc of `build`."""
    row = conn.execute(f"SELECT 1 FROM kfuncs WHERE build_id = ? AND name_id = {_NAME_ID}", (build, name))
    return row.fetchone() is not None


def kfunc_home(conn: sqlite3.Connection, build: int, name: str) -> str | None:
    """The module registering kfunc `name` on `build`, None: vmlinux (modules read only)."""
    return _home(conn, "kfuncs", build, name)


def records_variables(conn: sqlite3.Connection, build: int) -> bool:
    """Whether `build` recorded its kernel variables (builds.n_variables set)."""
    if "n_variables" not in {row[1] for row in conn.execute("PRAGMA table_info(builds)")}:
        return False
    row = conn.execute("SELECT n_variables FROM builds WHERE id = ?", (build,)).fetchone()
    return row is not None and row[0] is not None


class VariableFacts(NamedTuple):
    """One symbol (or BTF VAR) named like a `ksym` extern."""

    address: int | None  # None: a BTF VAR without a symbol
    section: str | None
    per_cpu: int
    btf_var: int


def variables(conn: sqlite3.Connection, build: int, name: str) -> list[VariableFacts]:
    """The kernel variables named `name` in `build` (several for file-scope statics)."""
    rows = conn.execute(
        "SELECT address, section, per_cpu, btf_var FROM variables"
        f" WHERE build_id = ? AND name_id = {_NAME_ID} ORDER BY address",
        (build, name),
    )
    return list(map(VariableFacts._make, rows))


def config_value(conn: sqlite3.Connection, build: int, name: str) -> str | None:
    """The value of config option `name` in `build` (y, m, n, a number, ...), None when absent."""
    row = conn.execute(
        f"SELECT value FROM config_options WHERE build_id = ? AND name_id = {_NAME_ID}", (build, name)
    ).fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------- types


def layouts(
    conn: sqlite3.Connection, build: int, name: str, kinds: Sequence[str] = ("struct", "union")
) -> list[int]:
    """The layout ids of the types named `name` of one of `kinds` (struct, union, enum) in `build`."""
    rows = conn.execute(
        f"SELECT layout_id FROM types WHERE build_id = ? AND name_id = {_NAME_ID}"
        f" AND kind IN ({','.join('?' * len(kinds))})",
        (build, name, *kinds),
    )
    return [layout for (layout,) in rows]


def field_type(conn: sqlite3.Connection, layout: int, member: str) -> str | None:
    """The (canonical) type text of member `member` of layout `layout`, None when it has none."""
    row = conn.execute(
        "SELECT coalesce(c.text, t.text) FROM struct_fields f JOIN type_texts t ON t.id = f.type_id"
        " LEFT JOIN type_texts c ON c.id = f.canon_id WHERE f.layout_id = ? AND f.name = ?",
        (layout, member),
    ).fetchone()
    return row[0] if row else None


class MemberRow(NamedTuple):
    """One row of a flattened layout (struct_fields), as CO-RE resolution walks it."""

    position: int
    name: str | None
    parent: int | None  # position of the anonymous container, None at top level
    type_text: str  # canonical when recorded
    type_kind: str | None  # None: not recorded (built before member type references)
    type_layout_id: int | None  # the struct/union/enum the member holds


def members(conn: sqlite3.Connection, layout: int, refs_recorded: bool | None = None) -> list[MemberRow]:
    """Every row of layout `layout`, in position order (type_kind and
    type_layout_id None in a database made before they were recorded;
    `refs_recorded`: whether struct_fields has them, None to look)."""
    if refs_recorded is None:
        refs_recorded = member_refs_recorded(conn)
    refs = "f.type_kind, f.type_layout_id" if refs_recorded else "NULL, NULL"
    rows = conn.execute(
        f"SELECT f.position, f.name, f.parent, coalesce(c.text, t.text), {refs}"
        " FROM struct_fields f JOIN type_texts t ON t.id = f.type_id"
        " LEFT JOIN type_texts c ON c.id = f.canon_id WHERE f.layout_id = ? ORDER BY f.position",
        (layout,),
    )
    return list(map(MemberRow._make, rows))


def member_refs_recorded(conn: sqlite3.Connection) -> bool:
    """Whether struct_fields has the member type references (schema 3)."""
    return "type_kind" in {row[1] for row in conn.execute("PRAGMA table_info(struct_fields)")}


def member_reader(conn: sqlite3.Connection) -> Callable[[int], list[MemberRow]]:
    """members() of `conn`, each layout read once (BuildFacts.members)."""
    refs = member_refs_recorded(conn)
    cache: dict[int, list[MemberRow]] = {}

    def read(layout: int) -> list[MemberRow]:
        rows = cache.get(layout)
        if rows is None:
            rows = cache[layout] = members(conn, layout, refs)
        return rows

    return read


def enum_value(conn: sqlite3.Connection, layouts: Sequence[int], value: str) -> int | None:
    """The value of enumerator `value` in one of the enum layouts `layouts`."""
    row = conn.execute(
        "SELECT value FROM enum_values WHERE name = ? AND layout_id IN (SELECT value FROM json_each(?))",
        (value, json.dumps(list(layouts))),
    ).fetchone()
    return row[0] if row else None


def any_enum_value(conn: sqlite3.Connection, build: int, value: str) -> int | None:
    """The value of enumerator `value` in any enum of `build`."""
    row = conn.execute(
        "SELECT e.value FROM enum_values e JOIN types t ON t.layout_id = e.layout_id"
        " WHERE e.name = ? AND t.build_id = ?",
        (value, build),
    ).fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------- changes


class Change(NamedTuple):
    kind: str  # the change kind: "param type changed", "field removed", ...
    detail: str | None  # what changed within the item: a parameter, a field path
    old: str | None
    new: str | None


def changes(
    conn: sqlite3.Connection,
    before: int,
    after: int,
    name: str,
    kinds: Sequence[str],
    item_kind: str | None = None,
) -> list[Change]:
    """The stored changes of kinds `kinds` to the items named `name` (of
    `item_kind`, or of any kind) between builds `before` and `after`."""
    query = (
        "SELECT c.change_kind, c.detail, c.old, c.new FROM changes c JOIN diff_pairs p ON p.id = c.pair_id"
        f" WHERE p.build_a = ? AND p.build_b = ? AND c.name_id = {_NAME_ID}"
        f" AND c.change_kind IN ({','.join('?' * len(kinds))})"
        + (" AND c.item_kind = ?" if item_kind else "")
    )
    params = (before, after, name, *kinds, *((item_kind,) if item_kind else ()))
    return list(map(Change._make, conn.execute(query, params)))
