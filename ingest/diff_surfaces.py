"""Differences in the other dependency surfaces (docs/concepts.md#differences): attachability of
functions, tracepoints, syscalls, LSM hooks, kfuncs and config options.
Each function returns (item_kind, name, change_kind, detail, old, new) tuples."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ingest import db

SURFACE_ITEMS = ("tracepoint", "syscall", "lsm_hook", "kfunc", "config")
ChangeTuple = tuple[str, str, str, str | None, str | None, str | None]


def attach_changes(
    conn: sqlite3.Connection, a: int, b: int, names: dict[int, str], match: Callable[[str], bool]
) -> list[ChangeTuple]:
    """kprobe/fentry attachability lost or gained, for functions in both builds.
    A ✗ whose reason changes is not a change: the program fails on both."""
    sa, sb = db.attach_states(conn, a), db.attach_states(conn, b)
    out: list[ChangeTuple] = []
    for nid in sa.keys() & sb.keys():
        name = names.get(nid)
        if name is None or not match(name):
            continue
        for k, how in enumerate(("kprobe", "fentry")):
            x, y = sa[nid][k], sb[nid][k]
            if x is None or y is None or (x == "✓") == (y == "✓"):
                continue
            out.append(
                ("function", name, "attachability lost" if x == "✓" else "attachability gained", how, x, y)
            )
    return out


def _pairs(
    conn: sqlite3.Connection,
    kind: str,
    a: int,
    b: int,
    match: Callable[[str], bool],
    key: Callable[[tuple], tuple],
) -> tuple[dict, dict]:
    rows = []
    for build in (a, b):
        rows.append({key(r): r for r in db.surface_rows(conn, kind, build) if match(r[1])})
    return rows[0], rows[1]


def _added_removed(
    kind: str, ra: dict, rb: dict, detail: Callable[[tuple], str | None], value: Callable[[tuple], str | None]
) -> list[ChangeTuple]:
    out: list[ChangeTuple] = []
    for k in ra.keys() - rb.keys():
        out.append((kind, ra[k][1], "removed", detail(ra[k]), value(ra[k]), None))
    for k in rb.keys() - ra.keys():
        out.append((kind, rb[k][1], "added", detail(rb[k]), None, value(rb[k])))
    return out


def tracepoint_changes(conn: sqlite3.Connection, a: int, b: int, match) -> list[ChangeTuple]:
    ra, rb = _pairs(conn, "tracepoint", a, b, match, lambda r: r[0])
    out = _added_removed("tracepoint", ra, rb, lambda r: None, lambda r: r[2] and f"class {r[2]}")
    for k in ra.keys() & rb.keys():
        (_, name, cls_a, lay_a, fn_a, fmt_a, raw_a), (_, _, cls_b, lay_b, fn_b, fmt_b, raw_b) = ra[k], rb[k]
        if cls_a != cls_b:
            out.append(("tracepoint", name, "event class changed", None, cls_a, cls_b))
        elif lay_a != lay_b:  # both present: the struct's own diff rows say how
            both = lay_a is not None and lay_b is not None
            out.append(
                (
                    "tracepoint",
                    name,
                    "event struct changed",
                    f"trace_event_raw_{cls_b}",
                    None if both else _presence(lay_a),
                    None if both else _presence(lay_b),
                )
            )
        if fn_a != fn_b and cls_a == cls_b:
            out.append(("tracepoint", name, "event function changed", None, fn_a, fn_b))
        if fmt_a != fmt_b and fmt_a is not None and fmt_b is not None:
            out.append(("tracepoint", name, "format changed", None, fmt_a, fmt_b))
        if raw_a != raw_b:
            out.append(("tracepoint", name, "raw prototype changed", None, raw_a, raw_b))
    return out


def syscall_changes(conn: sqlite3.Connection, a: int, b: int, match) -> list[ChangeTuple]:
    ra, rb = _pairs(conn, "syscall", a, b, match, lambda r: (r[1], r[2]))
    out = _added_removed("syscall", ra, rb, lambda r: r[2], lambda r: str(r[3]))
    for k in ra.keys() & rb.keys():
        x, y = ra[k], rb[k]
        if x[3] != y[3]:
            out.append(("syscall", x[1], "syscall number changed", x[2], str(x[3]), str(y[3])))
        if x[4] != y[4]:
            out.append(("syscall", x[1], "syscall symbol changed", x[2], x[4], y[4]))
    return out


def lsm_changes(conn: sqlite3.Connection, a: int, b: int, match) -> list[ChangeTuple]:
    ra, rb = _pairs(conn, "lsm_hook", a, b, match, lambda r: r[0])
    out = _added_removed("lsm_hook", ra, rb, lambda r: None, lambda r: r[2])
    for k in ra.keys() & rb.keys():
        x, y = ra[k], rb[k]
        if x[2] != y[2] and x[2] is not None and y[2] is not None:
            out.append(("lsm_hook", x[1], "hook prototype changed", None, x[2], y[2]))
        if x[3] != y[3]:
            out.append(("lsm_hook", x[1], "bpf_lsm changed", None, _yes(x[3]), _yes(y[3])))
    return out


def kfunc_changes(conn: sqlite3.Connection, a: int, b: int, match) -> list[ChangeTuple]:
    ra, rb = _pairs(conn, "kfunc", a, b, match, lambda r: r[0])
    out = _added_removed("kfunc", ra, rb, lambda r: None, lambda r: r[3])
    for k in ra.keys() & rb.keys():
        x, y = ra[k], rb[k]
        if x[2] != y[2] and x[2] is not None and y[2] is not None:
            out.append(("kfunc", x[1], "kfunc flags changed", None, hex(x[2]), hex(y[2])))
        if x[3] != y[3]:
            out.append(("kfunc", x[1], "kfunc sets changed", None, x[3], y[3]))
    return out


def config_changes(conn: sqlite3.Connection, a: int, b: int, match) -> list[ChangeTuple]:
    ra, rb = _pairs(conn, "config", a, b, match, lambda r: r[0])
    out = _added_removed("config", ra, rb, lambda r: None, lambda r: r[2])
    out += [
        ("config", ra[k][1], "config changed", None, ra[k][2], rb[k][2])
        for k in ra.keys() & rb.keys()
        if ra[k][2] != rb[k][2]
    ]
    return out


def _presence(layout: int | None) -> str:
    return "absent" if layout is None else "present"


def _yes(flag: int | None) -> str | None:
    return None if flag is None else ("yes" if flag else "no")


SURFACE_DIFFS = {
    "tracepoint": tracepoint_changes,
    "syscall": syscall_changes,
    "lsm_hook": lsm_changes,
    "kfunc": kfunc_changes,
    "config": config_changes,
}
