"""Differences in the other dependency surfaces (docs/concepts.md#differences): attachability of
functions, tracepoints, syscalls, LSM hooks, kfuncs, config options, and modules (added, removed;
functions, types, trace events and kfuncs moved between vmlinux and a module: the rules are here).
Each function returns the changes as db.ChangeRow records."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Protocol, TypeVar

from ingest.db import ChangeRow
from ingest.queries import builds as builds_q
from ingest.queries import functions as functions_q
from ingest.queries import modules as modules_q
from ingest.queries import surfaces as surfaces_q
from ingest.queries.surfaces import ConfigRow, KfuncRow, LsmHookRow, SyscallRow, TracepointRow

SURFACE_ITEMS = ("tracepoint", "syscall", "lsm_hook", "kfunc", "config")
Match = Callable[[str], bool]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=_Named)


class _Placed(Protocol):
    @property
    def module(self) -> str | None: ...


M = TypeVar("M", bound=_Placed)


def _change(
    kind: str,
    name: str,
    change_kind: str,
    detail: str | None = None,
    old: str | None = None,
    new: str | None = None,
) -> ChangeRow:
    return ChangeRow(item_kind=kind, name=name, change_kind=change_kind, detail=detail, old=old, new=new)


def attach_changes(
    conn: sqlite3.Connection, a: int, b: int, names: dict[int, str], match: Match
) -> list[ChangeRow]:
    """kprobe/fentry attachability lost or gained, for the functions of `names` in both builds.
    A ✗ whose reason changes is not a change: the program fails on both."""
    sa, sb = functions_q.attach_states(conn, a, names), functions_q.attach_states(conn, b, names)
    out: list[ChangeRow] = []
    for nid in sa.keys() & sb.keys():
        name = names.get(nid)
        if name is None or not match(name):
            continue
        for how in ("kprobe", "fentry"):
            x, y = getattr(sa[nid], how), getattr(sb[nid], how)
            if x is None or y is None or (x == "✓") == (y == "✓"):
                continue
            lost = "attachability lost" if x == "✓" else "attachability gained"
            out.append(_change("function", name, lost, detail=how, old=x, new=y))
    return out


def _pairs(
    read: Callable[[sqlite3.Connection, int], list[R]],
    conn: sqlite3.Connection,
    a: int,
    b: int,
    match: Match,
    key: Callable[[R], Hashable],
) -> tuple[dict[Hashable, R], dict[Hashable, R]]:
    ra, rb = ({key(r): r for r in read(conn, build) if match(r.name)} for build in (a, b))
    return ra, rb


def _known_absences(
    ra: dict[Hashable, M], rb: dict[Hashable, M], read: tuple[bool, bool]
) -> tuple[dict[Hashable, M], dict[Hashable, M]]:
    """The items of each side, less those only one side has that live in a module
    while the other side's modules were not read (`read`: per side): unknown, not gone."""
    return (
        {k: r for k, r in ra.items() if k in rb or absence_known(r.module, read[1])},
        {k: r for k, r in rb.items() if k in ra or absence_known(r.module, read[0])},
    )


def _added_removed(
    kind: str,
    ra: dict[Hashable, R],
    rb: dict[Hashable, R],
    detail: Callable[[R], str | None],
    value: Callable[[R], str | None],
) -> list[ChangeRow]:
    out: list[ChangeRow] = []
    for k in ra.keys() - rb.keys():
        out.append(_change(kind, ra[k].name, "removed", detail=detail(ra[k]), old=value(ra[k])))
    for k in rb.keys() - ra.keys():
        out.append(_change(kind, rb[k].name, "added", detail=detail(rb[k]), new=value(rb[k])))
    return out


def _by_name_id(row: TracepointRow | LsmHookRow | KfuncRow | ConfigRow) -> int:
    return row.name_id


def tracepoint_changes(conn: sqlite3.Connection, a: int, b: int, match: Match) -> list[ChangeRow]:
    """Tracepoints added, removed, changed, and moved between vmlinux and a module."""
    ra, rb = _pairs(surfaces_q.tracepoints, conn, a, b, match, _by_name_id)
    read = (builds_q.modules_read(conn, a), builds_q.modules_read(conn, b))
    ra, rb = _known_absences(ra, rb, read)
    out = _added_removed(
        "tracepoint", ra, rb, lambda r: None, lambda r: r.event_class and f"class {r.event_class}"
    )
    paths_b = module_paths(conn, b) if all(read) else None
    for k in ra.keys() & rb.keys():
        x, y = ra[k], rb[k]
        if x.event_class != y.event_class:
            out.append(
                _change("tracepoint", x.name, "event class changed", old=x.event_class, new=y.event_class)
            )
        elif x.struct_layout_id != y.struct_layout_id:  # both present: the struct's own diff rows say how
            both = x.struct_layout_id is not None and y.struct_layout_id is not None
            out.append(
                _change(
                    "tracepoint",
                    x.name,
                    "event struct changed",
                    detail=_event_struct(y),
                    old=None if both else _presence(x.struct_layout_id),
                    new=None if both else _presence(y.struct_layout_id),
                )
            )
        if x.func != y.func and x.event_class == y.event_class:
            out.append(_change("tracepoint", x.name, "event function changed", old=x.func, new=y.func))
        if x.print_fmt != y.print_fmt and x.print_fmt is not None and y.print_fmt is not None:
            out.append(_change("tracepoint", x.name, "format changed", old=x.print_fmt, new=y.print_fmt))
        if x.fields != y.fields and x.fields is not None and y.fields is not None:
            # A per-syscall event's format is made of its fields at boot: they are its format.
            out.append(_change("tracepoint", x.name, "format changed", "fields", x.fields, y.fields))
        if x.raw_prototype != y.raw_prototype:
            out.append(
                _change(
                    "tracepoint", x.name, "raw prototype changed", old=x.raw_prototype, new=y.raw_prototype
                )
            )
        if paths_b is not None:
            out += moved_changes("tracepoint", x.name, one_home(x.module), one_home(y.module), paths_b)
    return out


def syscall_changes(conn: sqlite3.Connection, a: int, b: int, match: Match) -> list[ChangeRow]:
    def key(r: SyscallRow) -> tuple[str, str]:
        return (r.name, r.abi)

    ra, rb = _pairs(surfaces_q.syscalls, conn, a, b, match, key)
    out = _added_removed("syscall", ra, rb, lambda r: r.abi, lambda r: str(r.number))
    for k in ra.keys() & rb.keys():
        x, y = ra[k], rb[k]
        if x.number != y.number:
            out.append(
                _change("syscall", x.name, "syscall number changed", x.abi, str(x.number), str(y.number))
            )
        if x.symbol != y.symbol:
            out.append(_change("syscall", x.name, "syscall symbol changed", x.abi, x.symbol, y.symbol))
    return out


def lsm_changes(conn: sqlite3.Connection, a: int, b: int, match: Match) -> list[ChangeRow]:
    ra, rb = _pairs(surfaces_q.lsm_hooks, conn, a, b, match, _by_name_id)
    out = _added_removed("lsm_hook", ra, rb, lambda r: None, lambda r: r.prototype)
    for k in ra.keys() & rb.keys():
        x, y = ra[k], rb[k]
        if x.prototype != y.prototype and x.prototype is not None and y.prototype is not None:
            out.append(
                _change("lsm_hook", x.name, "hook prototype changed", old=x.prototype, new=y.prototype)
            )
        if x.bpf_lsm != y.bpf_lsm:
            out.append(
                _change("lsm_hook", x.name, "bpf_lsm changed", old=_yes(x.bpf_lsm), new=_yes(y.bpf_lsm))
            )
    return out


def kfunc_changes(conn: sqlite3.Connection, a: int, b: int, match: Match) -> list[ChangeRow]:
    """kfuncs added, removed, changed, and moved between vmlinux and a module (or
    between modules: a kfunc is stored with the first module by path registering it)."""
    ra, rb = _pairs(surfaces_q.kfuncs, conn, a, b, match, _by_name_id)
    read = (builds_q.modules_read(conn, a), builds_q.modules_read(conn, b))
    ra, rb = _known_absences(ra, rb, read)
    out = _added_removed("kfunc", ra, rb, lambda r: None, lambda r: r.sets)
    paths_b = module_paths(conn, b) if all(read) else None
    for k in ra.keys() & rb.keys():
        x, y = ra[k], rb[k]
        if x.flags != y.flags and x.flags is not None and y.flags is not None:
            out.append(_change("kfunc", x.name, "kfunc flags changed", old=hex(x.flags), new=hex(y.flags)))
        if x.sets != y.sets:
            out.append(_change("kfunc", x.name, "kfunc sets changed", old=x.sets, new=y.sets))
        if paths_b is not None:
            out += moved_changes("kfunc", x.name, one_home(x.module), one_home(y.module), paths_b)
    return out


def config_changes(conn: sqlite3.Connection, a: int, b: int, match: Match) -> list[ChangeRow]:
    ra, rb = _pairs(surfaces_q.config_options, conn, a, b, match, _by_name_id)
    out = _added_removed("config", ra, rb, lambda r: None, lambda r: r.value)
    out += [
        _change("config", ra[k].name, "config changed", old=ra[k].value, new=rb[k].value)
        for k in ra.keys() & rb.keys()
        if ra[k].value != rb[k].value
    ]
    return out


def module_changes(conn: sqlite3.Connection, a: int, b: int, match: Match) -> list[ChangeRow]:
    """Modules added or removed (by name; old/new: the module's path). Call only when
    both builds' modules were read."""
    ra, rb = _pairs(modules_q.modules, conn, a, b, match, lambda r: r.name_id)
    return _added_removed("module", ra, rb, lambda r: None, lambda r: r.path)


#: Where an item lives, as a "moved into" change names it.
VMLINUX = "vmlinux"


def absence_known(module: str | None, other_read: bool) -> bool:
    """Whether an item that lives in `module` (None: vmlinux) in one build and is not
    found in the other is absent from it: one in a module only when the other build's
    modules were read (unknown is never absent)."""
    return module is None or other_read


def module_paths(conn: sqlite3.Connection, build: int) -> dict[str, str | None]:
    """A build's modules by name -> path in the tree (None: unreadable), as moved_changes takes them."""
    return {m.name: None if m.error else m.path for m in modules_q.modules(conn, build)}


def moved_changes(
    item_kind: str, name: str, old: Collection[str], new: Collection[str], paths_b: Mapping[str, str | None]
) -> list[ChangeRow]:
    """An item of both builds that lives in the modules `old` on A and `new` on B (empty:
    vmlinux; one module for a function, a trace event or a kfunc, one per layout for a type):
    "moved into module" (new: the module) or "moved into vmlinux"; old: where it lived
    on A. Between modules, only when none of A's may still hold it on B (_vacated).
    `paths_b`: module_paths of B. Call only when both builds' modules were read."""
    if set(old) == set(new) or (old and new and not _vacated(old, new, paths_b)):
        return []
    kind = "moved into module" if new else "moved into vmlinux"
    return [_change(item_kind, name, kind, old=_where(old), new=_where(new))]


def _vacated(old: Collection[str], new: Collection[str], paths_b: Mapping[str, str | None]) -> bool:
    """Whether each module of `old` is known not to hold the item on B: it is no module
    of B, or it comes before every module of `new` in B's path order (an item that only
    modules define is stored with the first module by path that defines it, so an earlier
    one does not). An unreadable module says nothing: unknown is never absent."""
    first = min(paths_b.get(m) or "" for m in new)

    def left(module: str) -> bool:
        if module not in paths_b:
            return True
        path = paths_b[module]
        return path is not None and path < first

    return all(left(m) for m in old)


def _where(modules: Collection[str]) -> str:
    return ", ".join(sorted(modules)) or VMLINUX


def one_home(module: str | None) -> tuple[str, ...]:
    """One module (None: vmlinux) as moved_changes takes it."""
    return () if module is None else (module,)


def _event_struct(row: TracepointRow) -> str:
    """The struct of an event's records (tracepoint_list.struct)."""
    if row.event_class in ("syscall_enter", "syscall_exit"):
        return "syscall_trace_" + row.event_class.removeprefix("syscall_")
    return f"trace_event_raw_{row.event_class}"


def _presence(layout: int | None) -> str:
    return "absent" if layout is None else "present"


def _yes(flag: int | None) -> str | None:
    return None if flag is None else ("yes" if flag else "no")


SURFACE_DIFFS: dict[str, Callable[[sqlite3.Connection, int, int, Match], list[ChangeRow]]] = {
    "tracepoint": tracepoint_changes,
    "syscall": syscall_changes,
    "lsm_hook": lsm_changes,
    "kfunc": kfunc_changes,
    "config": config_changes,
}
