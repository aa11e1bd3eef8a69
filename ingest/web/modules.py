"""/module/<name>: one loadable module across builds (docs/concepts.md#modules):
where it is shipped, what it needs loaded, what it defines, or why it is not there."""

from __future__ import annotations

import posixpath
import sqlite3
from collections.abc import Hashable

from ingest.queries import functions as functions_q
from ingest.queries import modules as modules_q
from ingest.queries import names as names_q
from ingest.queries.builds import BuildRow
from ingest.queries.modules import ModuleRow
from ingest.web.context import Context, Links, Page
from ingest.web.items import item_differences
from ingest.web.timeline import Verdict, timeline

#: (class, letter, text) of the module strip, in legend order.
MODULE_LEGEND = [
    ("ok", "", "✅ a loadable module of this build"),
    ("F", "✗", "shipped, but unreadable (see the reason)"),
    ("T", "B", "not a module here: maybe built into vmlinux"),
    ("nodwarf", "?", "not recorded: the build's modules were not read"),
    ("delta", "Δ", "changed vs the previous build (vs the baseline for variants)"),
    ("absent", "", "absent"),
]


def depends(row: ModuleRow) -> list[str]:
    """The modules `row` needs loaded first (.modinfo depends=), in order."""
    return [d for d in (row.depends or "").split(",") if d]


def module_page(conn: sqlite3.Connection, ctx: Context, links: Links, name: str) -> Page:
    """Per build: path, size, license, description, depends, vermagic, counts of
    functions and trace events, the kfuncs it registers; else built in (a guess from vmlinux's compile
    units), absent or not recorded."""
    out: Page = {
        "name": name,
        "found": False,
        "groups": [],
        "strip": [],
        "legend": MODULE_LEGEND,
        "links": links.data("modules_per_build", name=name, build=""),
    }
    nid = names_q.name_id(conn, name)
    rows = {r.build_id: r for r in modules_q.modules_named(conn, nid)} if nid is not None else {}
    if not rows:
        return out
    out["found"] = True
    out["is_function"] = functions_q.has_function(conn, nid) if nid is not None else False
    directories = sorted({posixpath.dirname(r.path) for r in rows.values()} - {""})
    kfuncs = modules_q.module_kfuncs(conn, [r.module_id for r in rows.values()])

    def state(build: BuildRow) -> Hashable:
        r = rows.get(build.id)
        if r is None:
            return "not recorded" if not build.modules_read else None
        return (
            r.path,
            r.license,
            r.depends,
            r.vermagic is not None,
            r.error is None,
            r.functions,
            tuple(kfuncs.get(r.module_id, ())),
        )

    def describe(build: BuildRow) -> Verdict:
        r = rows.get(build.id)
        if r is not None:
            return _present(links, build, name, r, kfuncs.get(r.module_id, []))
        if not build.modules_read:
            fields: dict[str, object] = {"present": False, "recorded": False}
            return Verdict(
                status="? not recorded (this build's modules were not read)",
                letters="?",
                cls="nodwarf",
                fields=fields,
            )
        built_in = {d: modules_q.vmlinux_functions_in(conn, build.id, d) for d in directories}
        hint = {d: n for d, n in built_in.items() if n}
        fields = {"present": False, "recorded": True, "built_in": hint}
        if hint:
            where = ", ".join(f"{n} in {d}/" for d, n in hint.items())
            return Verdict(
                status=f"built into vmlinux? (vmlinux has functions from {where})",
                letters="B",
                cls="T",
                fields=fields,
            )
        return Verdict(status="Absent", letters="", cls="absent", fields=fields)

    out["groups"], out["strip"] = timeline(ctx.groups, state, describe)
    out["differences"] = item_differences(conn, ctx, ("module",), nid) if nid is not None else None
    return out


def _present(links: Links, build: BuildRow, name: str, r: ModuleRow, kfuncs: list[str]) -> Verdict:
    """The status line and facts of a module a build ships (and the kfuncs it registers)."""
    fields: dict[str, object] = {
        "present": True,
        "recorded": True,
        "path": r.path,
        "license": r.license,
        "description": r.description,
        "depends": depends(r),
        "vermagic": r.vermagic,
        "size": r.size,
        "error": r.error,
        "functions": r.functions,
        "trace_events": r.trace_events,
        "kfuncs": kfuncs,
        "functions_url": links.url("module_functions", build=build.name, module=name),
    }
    if r.error is not None:
        return Verdict(status=f"{r.path}: unreadable ({r.error}) ⚠️", letters="✗", cls="F", fields=fields)
    size = f", {r.size:,} bytes" if r.size is not None else ""
    counts = (
        f", {r.functions:,} functions"
        + (f", {r.trace_events:,} trace events" if r.trace_events else "")
        + (f", {len(kfuncs):,} kfunc{'s' if len(kfuncs) > 1 else ''}" if kfuncs else "")
    )
    return Verdict(status=f"loadable module {r.path}{size}{counts} ✅", letters="", cls="ok", fields=fields)
