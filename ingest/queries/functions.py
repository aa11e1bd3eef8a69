"""Functions and their symbols: a function's row per build (its status, attachability,
prototype), its DWARF instances and callers, the ELF symbols named like it, and
the function states a diff or the matrix compares."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from ingest.queries._sql import NAME_ID, facts_only_in, in_chunks, module_join, module_name
from ingest.queries.modules import module_of

# --------------------------------------------------------------------------- one function per build


def has_function(conn: sqlite3.Connection, nid: int) -> bool:
    """Whether some build has a function of this name."""
    return conn.execute("SELECT 1 FROM functions WHERE name_id = ? LIMIT 1", (nid,)).fetchone() is not None


def function_anywhere(conn: sqlite3.Connection, name: str) -> bool:
    """Whether any build of the database has a function named `name`."""
    row = conn.execute(f"SELECT 1 FROM functions WHERE name_id = {NAME_ID} LIMIT 1", (name,))
    return row.fetchone() is not None


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
            f" f.prototype_id, p.text, f.prototype_source, {module_name('f', conn)} FROM functions f"
            " LEFT JOIN prototypes p ON p.id = f.prototype_id WHERE f.name_id = ?",
            (nid,),
        )
    ]


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
        f" WHERE build_id = ? AND name_id = {NAME_ID}",
        (build, name),
    ).fetchone()
    return FunctionFacts._make(row) if row else None


def function_home(conn: sqlite3.Connection, build: int, name: str) -> str | None:
    """The module function `name` lives in on `build` (functions.module_id), None: vmlinux.
    Only for builds whose modules were read (BuildFacts.modules_read)."""
    return module_of(conn, "functions", build, name)


class FunctionState(NamedTuple):
    """One row of `functions` as a diff compares it."""

    name_id: int
    name: str
    collision: str | None
    inline: str | None
    suffixes: str | None
    n_symbols: int
    prototype_id: int | None
    module: str | None = None  # the module it lives in; None: vmlinux (or modules not read)


#: The FunctionState columns, of a functions row or a function fact `f` (names joined as n and mn).
_STATE = "SELECT f.name_id, n.name, f.collision, f.inline, f.suffixes, f.n_symbols, f.prototype_id, mn.name"


def function_states(conn: sqlite3.Connection, build: int) -> list[FunctionState]:
    """Every function of a build, with the name of the module it lives in."""
    rows = conn.execute(
        f"{_STATE} FROM functions f JOIN names n ON n.id = f.name_id {module_join('f', conn)} WHERE f.build_id = ?",
        (build,),
    )
    return list(map(FunctionState._make, rows))


def function_states_of(conn: sqlite3.Connection, build: int, names: Iterable[int]) -> list[FunctionState]:
    """The functions of `names` (name ids) in a build."""
    rows = conn.execute(
        f"{_STATE} FROM json_each(?) j CROSS JOIN functions f ON f.name_id = j.value AND f.build_id = ?"
        " JOIN names n ON n.id = f.name_id LEFT JOIN names mn ON mn.id = f.module_name_id",
        (json.dumps(list(names)), build),
    )
    return list(map(FunctionState._make, rows))


def function_states_not_in(conn: sqlite3.Connection, build: int, other: int) -> list[FunctionState]:
    """The functions of `build` whose function fact `other` lacks (docs/storage.md):
    a set difference over the two builds' membership bitmaps, reading only the
    blocks where they differ. A name missing here has the same row in both."""
    rows = conn.execute(
        f"{_STATE} FROM {facts_only_in('function')}"
        " JOIN names n ON n.id = f.name_id LEFT JOIN names mn ON mn.id = f.module_name_id",
        (other, build),
    )
    return list(map(FunctionState._make, rows))


class FunctionPresence(NamedTuple):
    """A function's status in one build, as a /matrix cell shows it."""

    name_id: int
    build_id: int
    collision: str | None
    inline: str | None
    suffixes: tuple[str, ...]
    prototype_id: int | None


def function_presence(conn: sqlite3.Connection, nids: Iterable[int]) -> list[FunctionPresence]:
    """Status of these functions in every build that has them."""
    return [
        FunctionPresence(
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


# --------------------------------------------------------------------------- attachability


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


class AttachState(NamedTuple):
    """kprobe and fentry texts of the function_status view: "✓", "✗ (why)" or None (not recorded)."""

    kprobe: str | None
    fentry: str | None


def attach_states(
    conn: sqlite3.Connection, build: int, names: Iterable[int] | None = None
) -> dict[int, AttachState]:
    """name_id -> kprobe and fentry attachability of one build's functions (of `names` only, if given)."""
    if names is None:
        rows = conn.execute(
            "SELECT name_id, kprobe, fentry FROM function_status WHERE build_id = ?", (build,)
        )
    else:
        rows = conn.execute(
            "SELECT s.name_id, s.kprobe, s.fentry FROM json_each(?) j"
            " CROSS JOIN function_status s ON s.name_id = j.value AND s.build_id = ?",
            (json.dumps(list(names)), build),
        )
    return {name_id: AttachState(kprobe, fentry) for name_id, kprobe, fentry in rows}


# --------------------------------------------------------------------------- instances and callers


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
            f" i.defined, {module_name('i', conn)} FROM instances i LEFT JOIN paths dp ON dp.id = i.decl_path_id"
            " LEFT JOIN paths cp ON cp.id = i.cu_path_id WHERE i.name_id = ?"
            " ORDER BY i.build_id, i.address IS NULL, cp.path IS NULL, cp.path, i.id",
            (nid,),
        )
    ]


class CallerRow(NamedTuple):
    build_id: int
    callee_id: int
    kind: str  # "direct" or "inline"
    sites: int
    caller: str
    cu: str | None
    total: int  # callers of this kind the callee has in the build


def callers(conn: sqlite3.Connection, callees: Iterable[tuple[int, int]], limit: int) -> list[CallerRow]:
    """The first `limit` callers per (build, instance) of `callees` and kind, by CU and name."""
    return [
        CallerRow(*r)
        for r in conn.execute(
            "SELECT build_id, callee_id, kind, sites, caller, cu, total FROM (SELECT c.build_id, c.callee_id,"
            " c.kind, c.sites, rn.name AS caller, rp.path AS cu,"
            " count(*) OVER (PARTITION BY c.build_id, c.callee_id, c.kind) AS total,"
            " row_number() OVER (PARTITION BY c.build_id, c.callee_id, c.kind"
            "  ORDER BY rp.path, rn.name, c.caller_id) AS k"
            " FROM json_each(?) j CROSS JOIN callers c"
            "  ON c.build_id = json_extract(j.value, '$[0]') AND c.callee_id = json_extract(j.value, '$[1]')"
            " JOIN instance_facts r ON r.id = c.caller_id"
            " JOIN names rn ON rn.id = r.name_id LEFT JOIN paths rp ON rp.id = r.cu_path_id) WHERE k <= ?",
            (json.dumps(list(callees)), limit),
        )
    ]


class DefiningUnit(NamedTuple):
    """A compile unit that defines a function, and where it does."""

    cu_path_id: int
    path: str
    builds: frozenset[int]  # the builds whose instances of the function it defines


def defining_units(conn: sqlite3.Connection, name: str) -> list[DefiningUnit]:
    """The compile units that define function `name` on some build, by path id."""
    units: dict[tuple[int, str], set[int]] = {}
    for cu, path, build in conn.execute(
        "SELECT DISTINCT i.cu_path_id, p.path, i.build_id FROM instances i JOIN paths p ON p.id = i.cu_path_id"
        f" WHERE i.name_id = {NAME_ID} AND i.defined ORDER BY 1",
        (name,),
    ):
        units.setdefault((cu, path), set()).add(build)
    return [DefiningUnit(cu, path, frozenset(builds)) for (cu, path), builds in units.items()]


def unit_builds(conn: sqlite3.Connection, cu_path_id: int) -> frozenset[int]:
    """The builds with some instance in compile unit `cu_path_id`: the unit's facts
    as one bitmap per block, tested against each build's (docs/storage.md)."""
    rows = conn.execute(
        "SELECT DISTINCT m.build_id FROM (SELECT id >> 6 AS block, sum(1 << (id & 63)) AS bits"
        "  FROM instance_facts WHERE cu_path_id = ? GROUP BY 1) u"
        " JOIN instance_members m ON m.block = u.block AND m.bits & u.bits != 0",
        (cu_path_id,),
    )
    return frozenset(build for (build,) in rows)


# --------------------------------------------------------------------------- symbols


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
            f" {module_name('s', conn)} FROM symbols s"
            " JOIN names n ON n.id = s.name_id WHERE s.stem_id = ? ORDER BY s.build_id, s.address",
            (stem_id,),
        )
    ]


def has_exact_symbol(conn: sqlite3.Connection, build: int, name: str) -> bool:
    """Whether `build` has a symbol named exactly `name` (its own stem)."""
    row = conn.execute(
        f"SELECT 1 FROM symbols WHERE stem_id = {NAME_ID} AND build_id = ? AND name_id = stem_id LIMIT 1",
        (name, build),
    )
    return row.fetchone() is not None


class SymbolState(NamedTuple):
    ftrace: int | None
    kprobe_blocked: str | None


def symbol_states(conn: sqlite3.Connection, build: int, name: str) -> list[SymbolState]:
    """The ELF symbols named exactly `name` in `build` (a clone such as foo.isra.0)."""
    rows = conn.execute(
        f"SELECT ftrace, kprobe_blocked FROM symbols WHERE build_id = ? AND name_id = {NAME_ID}",
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


# --------------------------------------------------------------------------- prototypes


class PrototypeRow(NamedTuple):
    text: str
    return_type_id: int
    canon_return_id: int | None
    variadic: int


class ParamRow(NamedTuple):
    position: int
    name: str | None
    type_id: int
    canon_id: int | None


def prototype_details(
    conn: sqlite3.Connection, ids: Iterable[int]
) -> tuple[dict[int, PrototypeRow], dict[int, list[ParamRow]]]:
    """For prototype ids: the prototypes, and their parameters in position order."""
    ids = set(ids)
    protos = {
        pid: PrototypeRow(text, return_type_id, canon_return_id, variadic)
        for pid, text, return_type_id, canon_return_id, variadic in in_chunks(
            conn,
            "SELECT id, text, return_type_id, canon_return_id, variadic FROM prototypes WHERE id IN ({})",
            ids,
        )
    }
    params: dict[int, list[ParamRow]] = {i: [] for i in protos}
    for pid, *param in in_chunks(
        conn,
        "SELECT prototype_id, position, name, type_id, canon_id FROM prototype_params"
        " WHERE prototype_id IN ({}) ORDER BY prototype_id, position",
        ids,
    ):
        params[pid].append(ParamRow._make(param))
    return protos, params
