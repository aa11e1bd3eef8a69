"""What the diff step (ingest/changes/diff.py, ingest/changes/surfaces.py) reads of two builds:
function states, attachability, surfaces, named types, and the prototypes,
layouts and type texts of the items that differ."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import NamedTuple


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


class ModuleEntry(NamedTuple):
    """A loadable module of a build."""

    name_id: int
    name: str
    path: str
    error: str | None = None  # None: read; else why it is unreadable


class AttachState(NamedTuple):
    """kprobe and fentry texts of the function_status view: "✓", "✗ (why)" or None (not recorded)."""

    kprobe: str | None
    fentry: str | None


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


class TypeEntry(NamedTuple):
    """A named struct, union or enum of a build."""

    name_id: int
    name: str
    kind: str
    layout_id: int
    module: str | None = None  # the module the layout is stored with; None: vmlinux has the name


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


class FieldRow(NamedTuple):
    position: int
    name: str | None
    type_id: int
    canon_id: int | None
    bit_offset: int
    bit_size: int
    parent: int | None


class EnumValue(NamedTuple):
    name: str
    value: int


class LayoutDetails(NamedTuple):
    """Per layout id: its size, fields and enum values, in position order."""

    sizes: dict[int, int]
    fields: dict[int, list[FieldRow]]
    values: dict[int, list[EnumValue]]


def _module_name(alias: str) -> str:
    """Joins that give the name of the module of row `alias` (a table with module_id)
    as `mn.name`: NULL for vmlinux."""
    return f"LEFT JOIN modules m ON m.id = {alias}.module_id LEFT JOIN names mn ON mn.id = m.name_id"


def function_states(conn: sqlite3.Connection, build: int) -> list[FunctionState]:
    """Every function of a build, with the name of the module it lives in."""
    rows = conn.execute(
        "SELECT f.name_id, n.name, f.collision, f.inline, f.suffixes, f.n_symbols, f.prototype_id, mn.name"
        f" FROM functions f JOIN names n ON n.id = f.name_id {_module_name('f')} WHERE f.build_id = ?",
        (build,),
    )
    return list(map(FunctionState._make, rows))


def modules_read(conn: sqlite3.Connection, build: int) -> bool:
    """Whether the build's modules were read (builds.n_modules is not NULL)."""
    row = conn.execute("SELECT n_modules IS NOT NULL FROM builds WHERE id = ?", (build,)).fetchone()
    return bool(row and row[0])


def modules(conn: sqlite3.Connection, build: int) -> list[ModuleEntry]:
    """Every module of a build, readable or not."""
    rows = conn.execute(
        "SELECT m.name_id, n.name, m.path, m.error FROM modules m JOIN names n ON n.id = m.name_id"
        " WHERE m.build_id = ?",
        (build,),
    )
    return list(map(ModuleEntry._make, rows))


def attach_states(conn: sqlite3.Connection, build: int) -> dict[int, AttachState]:
    """name_id -> kprobe and fentry attachability of one build's functions."""
    return {
        name_id: AttachState(kprobe, fentry)
        for name_id, kprobe, fentry in conn.execute(
            "SELECT name_id, kprobe, fentry FROM function_status WHERE build_id = ?", (build,)
        )
    }


_TRACEPOINTS = (
    "SELECT t.name_id, n.name, c.name, t.struct_layout_id, f.name, x.text, r.text, fx.text, mn.name"
    " FROM tracepoints t JOIN names n ON n.id = t.name_id LEFT JOIN names c ON c.id = t.class_id"
    " LEFT JOIN names f ON f.id = t.func_id LEFT JOIN texts x ON x.id = t.print_fmt_id"
    " LEFT JOIN type_texts r ON r.id = t.raw_prototype_id LEFT JOIN texts fx ON fx.id = t.fields_id"
    f" {_module_name('t')} WHERE t.build_id = ?"
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
    f" {_module_name('k')} WHERE k.build_id = ?"
)
_CONFIG = (
    "SELECT c.name_id, n.name, c.value FROM config_options c JOIN names n ON n.id = c.name_id"
    " WHERE c.build_id = ?"
)


def tracepoints(conn: sqlite3.Connection, build: int) -> list[TracepointRow]:
    """One build's tracepoints."""
    return list(map(TracepointRow._make, conn.execute(_TRACEPOINTS, (build,))))


def syscalls(conn: sqlite3.Connection, build: int) -> list[SyscallRow]:
    """One build's syscall table slots."""
    return list(map(SyscallRow._make, conn.execute(_SYSCALLS, (build,))))


def lsm_hooks(conn: sqlite3.Connection, build: int) -> list[LsmHookRow]:
    """One build's LSM hooks."""
    return list(map(LsmHookRow._make, conn.execute(_LSM_HOOKS, (build,))))


def kfuncs(conn: sqlite3.Connection, build: int) -> list[KfuncRow]:
    """One build's kfuncs."""
    return list(map(KfuncRow._make, conn.execute(_KFUNCS, (build,))))


def config_options(conn: sqlite3.Connection, build: int) -> list[ConfigRow]:
    """One build's kernel config options."""
    return list(map(ConfigRow._make, conn.execute(_CONFIG, (build,))))


def type_entries(conn: sqlite3.Connection, build: int) -> list[TypeEntry]:
    """Every named struct, union and enum of a build, with its module."""
    rows = conn.execute(
        "SELECT t.name_id, n.name, t.kind, t.layout_id, mn.name FROM types t JOIN names n ON n.id = t.name_id"
        f" {_module_name('t')} WHERE t.build_id = ?",
        (build,),
    )
    return list(map(TypeEntry._make, rows))


def in_chunks(conn: sqlite3.Connection, sql: str, ids: Iterable[int | str]) -> list[tuple]:
    """Rows of `sql` (with one `{}` for a list of placeholders) for `ids`, 500 at a time."""
    keys = sorted(set(ids))
    out: list[tuple] = []
    for k in range(0, len(keys), 500):
        chunk = keys[k : k + 500]
        out.extend(conn.execute(sql.format(",".join("?" * len(chunk))), chunk))
    return out


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


def layout_details(conn: sqlite3.Connection, ids: Iterable[int]) -> LayoutDetails:
    """For layout ids: sizes, fields and enum values, in position order."""
    ids = set(ids)
    sizes: dict[int, int] = dict(in_chunks(conn, "SELECT id, size FROM layouts WHERE id IN ({})", ids))
    fields: dict[int, list[FieldRow]] = {i: [] for i in sizes}
    values: dict[int, list[EnumValue]] = {i: [] for i in sizes}
    for layout, *field in in_chunks(
        conn,
        "SELECT layout_id, position, name, type_id, canon_id, bit_offset, bit_size, parent"
        " FROM struct_fields WHERE layout_id IN ({}) ORDER BY layout_id, position",
        ids,
    ):
        fields[layout].append(FieldRow._make(field))
    for layout, name, value in in_chunks(
        conn,
        "SELECT layout_id, name, value FROM enum_values WHERE layout_id IN ({}) ORDER BY layout_id, position",
        ids,
    ):
        values[layout].append(EnumValue(name, value))
    return LayoutDetails(sizes, fields, values)


def type_texts(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str]:
    """{id: text} of type_texts rows."""
    return dict(in_chunks(conn, "SELECT id, text FROM type_texts WHERE id IN ({})", ids))


def name_ids(conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
    """{name: id} of the names already in the `names` lookup table."""
    return dict(in_chunks(conn, "SELECT name, id FROM names WHERE name IN ({})", names))
