"""Surfaces: the trace events, syscalls, LSM hooks, kfuncs, kernel variables and
config options of builds, by build (what a diff compares), by name (the
surface pages, the matrix, check)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from ingest.queries._sql import NAME_ID, module_join, module_name
from ingest.queries.database import records_kfunc_modules
from ingest.queries.modules import module_of

# --------------------------------------------------------------------------- one build's surfaces


class TracepointRow(NamedTuple):
    name_id: int
    name: str
    event_class: str | None
    struct_layout_id: int | None
    func: str | None
    print_fmt: str | None
    raw_prototype: str | None
    fields: str | None  # per-syscall events' argument list; None for the others or not recorded
    module: str | None = None  # the module defining it; None: vmlinux (or modules not read)


class SyscallRow(NamedTuple):
    name_id: int
    name: str
    abi: str
    number: int
    symbol: str


class LsmHookRow(NamedTuple):
    name_id: int
    name: str
    prototype: str | None
    bpf_lsm: int | None


class KfuncRow(NamedTuple):
    name_id: int
    name: str
    flags: int | None
    sets: str | None
    module: str | None  # the module that registers it; None: vmlinux


class ConfigRow(NamedTuple):
    name_id: int
    name: str
    value: str


_TRACEPOINTS = (
    "SELECT t.name_id, n.name, c.name, t.struct_layout_id, f.name, x.text, r.text, fx.text, mn.name"
    " FROM tracepoints t JOIN names n ON n.id = t.name_id LEFT JOIN names c ON c.id = t.class_id"
    " LEFT JOIN names f ON f.id = t.func_id LEFT JOIN texts x ON x.id = t.print_fmt_id"
    " LEFT JOIN type_texts r ON r.id = t.raw_prototype_id LEFT JOIN texts fx ON fx.id = t.fields_id"
    " {module} WHERE t.build_id = ?"
)


_SYSCALLS = (
    "SELECT s.name_id, n.name, s.abi, s.number, y.name FROM syscalls s JOIN names n ON n.id = s.name_id"
    " JOIN names y ON y.id = s.symbol_id WHERE s.build_id = ?"
)


_LSM_HOOKS = (
    "SELECT h.name_id, n.name, p.text, h.bpf_lsm FROM lsm_hooks h JOIN names n ON n.id = h.name_id"
    " LEFT JOIN type_texts p ON p.id = h.prototype_id WHERE h.build_id = ?"
)


_KFUNCS = (
    "SELECT k.name_id, n.name, k.flags, k.sets, mn.name FROM kfuncs k JOIN names n ON n.id = k.name_id"
    " {module} WHERE k.build_id = ?"
)


_CONFIG = (
    "SELECT c.name_id, n.name, c.value FROM config_options c JOIN names n ON n.id = c.name_id"
    " WHERE c.build_id = ?"
)


def tracepoints(conn: sqlite3.Connection, build: int) -> list[TracepointRow]:
    """One build's tracepoints."""
    return list(
        map(TracepointRow._make, conn.execute(_TRACEPOINTS.format(module=module_join("t", conn)), (build,)))
    )


def syscalls(conn: sqlite3.Connection, build: int) -> list[SyscallRow]:
    """One build's syscall table slots."""
    return list(map(SyscallRow._make, conn.execute(_SYSCALLS, (build,))))


def lsm_hooks(conn: sqlite3.Connection, build: int) -> list[LsmHookRow]:
    """One build's LSM hooks."""
    return list(map(LsmHookRow._make, conn.execute(_LSM_HOOKS, (build,))))


def kfuncs(conn: sqlite3.Connection, build: int) -> list[KfuncRow]:
    """One build's kfuncs."""
    return list(map(KfuncRow._make, conn.execute(_KFUNCS.format(module=module_join("k", conn)), (build,))))


def config_options(conn: sqlite3.Connection, build: int) -> list[ConfigRow]:
    """One build's kernel config options."""
    return list(map(ConfigRow._make, conn.execute(_CONFIG, (build,))))


# --------------------------------------------------------------------------- one name's surfaces


#: A value a surface view row holds.
Value = str | int | float | None


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
    kfunc_module = module_name("kfuncs", conn) if records_kfunc_modules(conn) else "NULL"
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


def kfunc_modules(conn: sqlite3.Connection, nids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """name id -> the modules registering a kfunc of that name in some build, sorted
    (names that are a kfunc of vmlinux only, or of no build, are left out)."""
    nids = list(nids)
    if not nids or not records_kfunc_modules(conn):
        return {}
    return {
        nid: tuple(sorted(modules.split(",")))
        for nid, modules in conn.execute(
            "SELECT k.name_id, group_concat(DISTINCT mn.name) FROM kfuncs k JOIN modules m ON m.id = k.module_id"
            " JOIN names mn ON mn.id = m.name_id WHERE k.name_id IN (SELECT value FROM json_each(?))"
            " GROUP BY k.name_id",
            (json.dumps(list(nids)),),
        )
    }


class Tracepoint(NamedTuple):
    system: str | None  # None: a raw tracepoint only
    raw_prototype_id: int | None  # None: no BTF typedef btf_trace_<name>


def tracepoint(conn: sqlite3.Connection, build: int, name: str) -> Tracepoint | None:
    """The tracepoint named `name` in `build`, None when absent."""
    row = conn.execute(
        f"SELECT system, raw_prototype_id FROM tracepoints WHERE build_id = ? AND name_id = {NAME_ID}",
        (build, name),
    ).fetchone()
    return Tracepoint._make(row) if row else None


def tracepoint_anywhere(conn: sqlite3.Connection, name: str) -> bool:
    """Whether any build of the database has a tracepoint named `name`."""
    row = conn.execute(f"SELECT 1 FROM tracepoints WHERE name_id = {NAME_ID} LIMIT 1", (name,))
    return row.fetchone() is not None


def tracepoint_home(conn: sqlite3.Connection, build: int, name: str) -> str | None:
    """The module defining trace event `name` on `build`, None: vmlinux (modules read only)."""
    return module_of(conn, "tracepoints", build, name)


def lsm_hook_attaches(conn: sqlite3.Connection, build: int, name: str) -> bool | None:
    """Whether BPF LSM programs attach to hook `name` (a bpf_lsm_<name> BTF
    FUNC exists); None when the build has no such hook."""
    row = conn.execute(
        f"SELECT bpf_lsm FROM lsm_hooks WHERE build_id = ? AND name_id = {NAME_ID}", (build, name)
    ).fetchone()
    return bool(row[0]) if row else None


def syscall_number(conn: sqlite3.Connection, build: int, name: str) -> int | None:
    """The native syscall number of `name` in `build`, None when absent."""
    row = conn.execute(
        f"SELECT number FROM syscalls WHERE build_id = ? AND abi = 'native' AND name_id = {NAME_ID}",
        (build, name),
    ).fetchone()
    return row[0] if row else None


def is_kfunc(conn: sqlite3.Connection, build: int, name: str) -> bool:
    """Whether `name` is a kfunc of `build`."""
    row = conn.execute(f"SELECT 1 FROM kfuncs WHERE build_id = ? AND name_id = {NAME_ID}", (build, name))
    return row.fetchone() is not None


def kfunc_home(conn: sqlite3.Connection, build: int, name: str) -> str | None:
    """The module registering kfunc `name` on `build`, None: vmlinux (modules read only)."""
    return module_of(conn, "kfuncs", build, name)


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
        f" WHERE build_id = ? AND name_id = {NAME_ID} ORDER BY address",
        (build, name),
    )
    return list(map(VariableFacts._make, rows))


def config_value(conn: sqlite3.Connection, build: int, name: str) -> str | None:
    """The value of config option `name` in `build` (y, m, n, a number, ...), None when absent."""
    row = conn.execute(
        f"SELECT value FROM config_options WHERE build_id = ? AND name_id = {NAME_ID}", (build, name)
    ).fetchone()
    return row[0] if row else None


def tracepoint_in_system(conn: sqlite3.Connection, system: str, event: str) -> bool:
    """Whether some build has trace event `event` in trace system `system`."""
    row = conn.execute(
        "SELECT 1 FROM tracepoints t JOIN names n ON n.id = t.name_id WHERE n.name = ? AND t.system = ? LIMIT 1",
        (event, system),
    ).fetchone()
    return row is not None
