"""The pages of one item across builds: /function/<name>, /struct/<name> and
/<surface>/<name> (tracepoint, syscall, lsm, kfunc, config)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Hashable
from typing import NamedTuple

from ingest.bpf import check
from ingest.groups import pairs
from ingest.join import classify
from ingest.model import Layout
from ingest.queries import changes as changes_q
from ingest.queries import database as database_q
from ingest.queries import functions as functions_q
from ingest.queries import names as names_q
from ingest.queries import places
from ingest.queries import surfaces as surfaces_q
from ingest.queries import typedefs as typedef_reads
from ingest.queries import types as types_q
from ingest.queries.builds import BuildRow
from ingest.queries.functions import FunctionRow
from ingest.queries.surfaces import SurfaceRow
from ingest.queries.types import TypeRow
from ingest.types.cdecl import layout_text
from ingest.web.context import MASK64, Context, Links, Page, hex_address, segment
from ingest.web.style import LEGEND, SURFACE_CLASSES, SURFACE_LEGEND, SURFACE_LETTERS
from ingest.web.timeline import Deltas, Verdict, timeline

MAX_INSTANCES = 20  # instances listed per build (the rest: JSON link)
MAX_CALLERS = 100  # callers listed per instance and kind
MAX_SYMBOLS = 50  # symbols listed per build


class Surface(NamedTuple):
    """A page of another surface (docs/concepts.md#surfaces): its table, view, canned query,
    change item kind, title and the `kernsurf check` attach types whose verdicts it shows."""

    table: str
    view: str
    query: str
    item: str
    title: str
    attaches: tuple[str, ...]


#: URL segment -> Surface.
SURFACES = {
    "tracepoint": Surface(
        table="tracepoints",
        view="tracepoint_list",
        query="tracepoints_per_build",
        item="tracepoint",
        title="Tracepoint",
        attaches=("tracepoint", "raw_tracepoint", "tp_btf"),
    ),
    "syscall": Surface(
        "syscalls", "syscall_list", "syscalls_per_build", "syscall", "System call", ("ksyscall",)
    ),
    "lsm": Surface("lsm_hooks", "lsm_hook_list", "lsm_hooks_per_build", "lsm_hook", "LSM hook", ("lsm",)),
    "kfunc": Surface("kfuncs", "kfunc_list", "kfuncs_per_build", "kfunc", "kfunc", ("kfunc",)),
    "config": Surface(
        "config_options", "config_list", "config_per_build", "config", "Config option", ("kconfig",)
    ),
}
#: Surface tables whose names search finds -> the URL segment of their pages.
SURFACE_TABLES = {surface.table: seg for seg, surface in SURFACES.items()}


# --------------------------------------------------------------------------- /function/<name>


def function_page(conn: sqlite3.Connection, ctx: Context, links: Links, name: str) -> Page:
    """Status, prototype, attachability, instances, callers and symbols of a function per build."""
    out: Page = {
        "name": name,
        "found": False,
        "groups": [],
        "strip": [],
        "legend": LEGEND,
        "links": {
            "status": links.data("function_builds", name=name),
            "instances": links.data("function_instances", name=name),
            "symbols": links.data("function_symbols", name=name),
        },
        "search": links.url("search_names", q=name),
    }
    nid = names_q.name_id(conn, name)
    if nid is None:
        return out
    funcs = {f.build_id: f for f in functions_q.functions(conn, nid)}
    attach = (
        {a.build_id: a for a in functions_q.attachability(conn, nid)}
        if database_q.records_attachability(conn)
        else {}
    )
    out["is_type"] = types_q.has_type(conn, nid)
    if not funcs:
        return out
    out["found"] = True
    kfuncs = _kfunc_lines(conn, ctx, name, nid)
    out["is_kfunc"] = bool(kfuncs)
    instances, hidden = _instances(conn, nid)
    symbols, more_symbols = _symbols(conn, nid)
    # the modules holding a copy, only read when it lives in modules somewhere (its status line names them)
    copies = places.module_copies(conn, nid) if any(f.module for f in funcs.values()) else {}

    def modules_of(f: FunctionRow | None, build: BuildRow) -> list[str]:
        """The modules it lives in on `build` (none when vmlinux has it), by name."""
        if f is None or f.module is None:
            return []
        return sorted({c.module for c in copies.get(build.id, ())} | {f.module})

    def state(build: BuildRow) -> Hashable:
        f = funcs.get(build.id)
        return None if f is None else (f.collision, f.inline, f.suffixes, f.prototype_id, f.module)

    def describe(build: BuildRow) -> Verdict:
        f = funcs.get(build.id)
        fields: dict[str, object] = {
            "present": f is not None,
            "no_dwarf": not build.has_dwarf,
            "build_lacks": build.lacks,
        }
        if f is not None:
            a = attach.get(build.id)
            fields.update(_function_fields(f))
            fields.update(
                kprobe=a and a.kprobe,
                fentry=a and a.fentry,
                ftrace=a and a.ftrace,
                instances=instances.get(build.id, []),
                more_instances=hidden.get(build.id, 0),
                symbols=symbols.get(build.id, []),
                more_symbols=more_symbols.get(build.id, 0),
                callers_links=links.data("function_callers", name=name, build=build.name),
                kfunc=kfuncs.get(build.id),
                modules=[c._asdict() for c in copies.get(build.id, ())] if f.module else [],
            )
        letters, cls = function_cell(f, build)
        status = function_status_line(f, build) + in_modules(modules_of(f, build))
        return Verdict(status=status, letters=letters, cls=cls, fields=fields)

    out["differences"] = differences = item_differences(conn, ctx, ("function",), nid)
    out["groups"], out["strip"] = timeline(ctx.groups, state, describe, stored_deltas(differences))
    return out


def _function_fields(f: FunctionRow) -> dict[str, object]:
    return {
        "collision": f.collision,
        "inline": f.inline,
        "suffixes": list(f.suffixes),
        "n_instances": f.n_instances,
        "n_symbols": f.n_symbols,
        "prototype_id": f.prototype_id,
        "prototype": f.prototype,
        "prototype_source": f.prototype_source,
        "module": f.module,
    }


def _kfunc_lines(conn: sqlite3.Connection, ctx: Context, name: str, nid: int) -> dict[int, str]:
    """build id -> what the kfunc page's status line says of `name` there (its sets, its module)."""
    if SURFACES["kfunc"].view not in ctx.tables:
        return {}
    return {
        r.build_id: _surface_summary("kfunc", name, [r.facts]) + in_module(_module_of(r.facts))
        for r in surfaces_q.surface_rows(conn, SURFACES["kfunc"].view, nid)
    }


def _module_of(facts: dict[str, surfaces_q.Value]) -> str | None:
    """The module a surface view row lives in (its `module` column), None: vmlinux."""
    module = facts.get("module")
    return str(module) if module else None


def in_module(module: str | None) -> str:
    """What a status line adds when the item lives in a loadable module."""
    return f" · in module {module}" if module else ""


MAX_MODULES_NAMED = 6  # modules a status line names (the rest counted)


def in_modules(modules: list[str]) -> str:
    """What a status line adds when the item lives in one or several modules:
    " · in modules kvm, kvm_intel"."""
    if len(modules) <= 1:
        return in_module(modules[0] if modules else None)
    named = ", ".join(modules[:MAX_MODULES_NAMED])
    more = len(modules) - MAX_MODULES_NAMED
    return f" · in modules {named}" + (f" and {more} more" if more > 0 else "")


def function_status_line(f: FunctionRow | functions_q.FunctionPresence | None, build: BuildRow) -> str:
    if f is None:
        return classify.build_status(None, None, (), False, build.has_dwarf)
    return classify.build_status(f.collision, f.inline, f.suffixes, True, build.has_dwarf)


def function_cell(f: FunctionRow | functions_q.FunctionPresence | None, build: BuildRow) -> tuple[str, str]:
    if f is None:
        return classify.strip_cell(None, None, (), False, build.has_dwarf)
    return classify.strip_cell(f.collision, f.inline, f.suffixes, True, build.has_dwarf)


def _instances(conn: sqlite3.Connection, nid: int) -> tuple[dict[int, list[dict]], dict[int, int]]:
    """Instances per build (at most MAX_INSTANCES, with their callers) and how many more."""
    listed: dict[int, list[dict]] = defaultdict(list)
    hidden: dict[int, int] = defaultdict(int)
    for i in functions_q.instances(conn, nid):
        if len(listed[i.build_id]) >= MAX_INSTANCES:
            hidden[i.build_id] += 1
            continue
        listed[i.build_id].append(
            {
                "id": i.id,
                "external": i.external,
                "cu": i.cu,
                "address": hex_address(i.address),
                "location": f"{i.decl_path}:{i.decl_line}" if i.decl_path and i.decl_line else i.decl_path,
                "defined": i.defined,
                "module": i.module,
                "inline": i.inline,
                "inlined": i.inline in (1, 3),
                "inline_callers": [],
                "direct_callers": [],
                "more": {"inline": 0, "direct": 0},
            }
        )
    by_id = {(build, i["id"]): i for build, rows in listed.items() for i in rows}
    if by_id:
        for c in functions_q.callers(conn, by_id, MAX_CALLERS):
            inst = by_id[c.build_id, c.callee_id]
            inst[c.kind + "_callers"].append({"name": c.caller, "cu": c.cu, "sites": c.sites})
            inst["more"][c.kind] = c.total - MAX_CALLERS if c.total > MAX_CALLERS else 0
    return listed, hidden


def _symbols(conn: sqlite3.Connection, nid: int) -> tuple[dict[int, list[str]], dict[int, int]]:
    """ "start-end: name (binding)" per build (at most MAX_SYMBOLS) and how many more."""
    listed: dict[int, list[str]] = defaultdict(list)
    more: dict[int, int] = defaultdict(int)
    for s in functions_q.symbols(conn, nid):
        if len(listed[s.build_id]) >= MAX_SYMBOLS:
            more[s.build_id] += 1
            continue
        start = s.address & MASK64
        where = f" in module {s.module}" if s.module else ""
        listed[s.build_id].append(
            f"{start:x}-{(start + (s.size or 0)) & MASK64:x}: {s.name} ({s.binding}){where}"
        )
    return listed, more


# --------------------------------------------------------------------------- /struct/<name>


def struct_page(conn: sqlite3.Connection, ctx: Context, links: Links, name: str) -> Page:
    """The definitions (C layout text) of a struct, union or enum name per build."""
    out: Page = {
        "name": name,
        "found": False,
        "groups": [],
        "strip": [],
        "legend": LEGEND,
        "links": {"layout": links.data("struct_layout", name=name)},
        "search": links.url("search_names", q=name),
    }
    nid = names_q.name_id(conn, name)
    if nid is None:
        return out
    per_build: dict[int, list[TypeRow]] = defaultdict(list)
    for t in types_q.types(conn, nid):
        per_build[t.build_id].append(t)
    out["is_function"] = functions_q.has_function(conn, nid)
    out["is_typedef"] = "typedefs" in ctx.tables and bool(typedef_reads.across_builds(conn, name))
    if not per_build:
        return out
    out["found"] = True
    texts = _layout_texts(conn, name, [t for rows in per_build.values() for t in rows])

    def state(build: BuildRow) -> Hashable:
        rows = per_build.get(build.id)
        return tuple((t.layout_id, t.module) for t in rows) if rows else None

    def describe(build: BuildRow) -> Verdict:
        defs = [
            {
                "kind": t.kind,
                "size": t.size,
                "text": texts[t.layout_id],
                "layout_id": t.layout_id,
                "module": t.module,
            }
            for t in per_build.get(build.id, ())
        ]
        if not defs:
            status, letters, cls = "Absent ⚠️", "", "absent"
        elif len(defs) > 1:
            status, letters, cls = f"{len(defs)} distinct definitions ⚠️", "C", "C"
        else:
            status, letters, cls = "✅", "", "ok"
        modules = sorted({t.module for t in per_build.get(build.id, ()) if t.module})
        status += in_modules(modules)
        return Verdict(
            status=status, letters=letters, cls=cls, fields={"present": bool(defs), "definitions": defs}
        )

    out["differences"] = differences = item_differences(conn, ctx, ("struct", "union", "enum"), nid)
    out["groups"], out["strip"] = timeline(ctx.groups, state, describe, stored_deltas(differences))
    out["kind"] = "/".join(sorted({t.kind for rows in per_build.values() for t in rows}))
    return out


def _layout_texts(conn: sqlite3.Connection, name: str, rows: list[TypeRow]) -> dict[int, str]:
    """layout id -> its C definition."""
    ids = {t.layout_id for t in rows}
    fields, values = types_q.layout_fields(conn, ids), types_q.enum_values(conn, ids)
    texts: dict[int, str] = {}
    for t in rows:
        if t.layout_id not in texts:
            texts[t.layout_id] = layout_text(
                Layout(
                    kind=t.kind,
                    name=name,
                    size=t.size,
                    fields=fields.get(t.layout_id, []),
                    values=values.get(t.layout_id, []),
                )
            )
    return texts


# --------------------------------------------------------------------------- /<surface>/<name>


def surface_page(conn: sqlite3.Connection, ctx: Context, links: Links, kind: str, name: str) -> Page:
    """A tracepoint, syscall, LSM hook, kfunc or config option per build, with the
    `kernsurf check` verdicts of the attach types that name it."""
    if kind not in SURFACES:
        return {"kind": kind, "name": name, "found": False, "known_kind": False}
    surface = SURFACES[kind]
    out: Page = {
        "kind": kind,
        "title": surface.title,
        "name": name,
        "found": False,
        "known_kind": True,
        "groups": [],
        "strip": [],
        "legend": SURFACE_LEGEND,
        "links": links.data(surface.query, name=name, build=""),
        "function": False,
    }
    if surface.view not in ctx.tables:
        out["missing"] = True  # a database made before the surfaces were recorded
        return out
    nid = names_q.name_id(conn, name)
    if nid is None:
        return out
    per_build: dict[int, list[SurfaceRow]] = defaultdict(list)
    for row in surfaces_q.surface_rows(conn, surface.view, nid):
        per_build[row.build_id].append(row)
    if not per_build:
        return out
    out["found"] = True
    out["function"] = functions_q.has_function(conn, nid)
    dependencies = [check.parse_spec(f"{how}:{name}") for how in surface.attaches]

    def state(build: BuildRow) -> Hashable:
        rows = per_build.get(build.id)
        return tuple(sorted(tuple(sorted(r.facts.items())) for r in rows)) if rows else None

    def describe(build: BuildRow) -> Verdict:
        facts = [r.facts for r in per_build.get(build.id, ())]
        if not facts:
            return Verdict(
                status="Absent ⚠️",
                letters="",
                cls="absent",
                fields={"present": False, "facts": facts, "verdicts": []},
            )
        cells = [(check.spec(dep), check.verdict(conn, dep, build.id)) for dep in dependencies]
        verdicts = [
            {"spec": spec, "mark": check.MARKS[c.level], "text": c.text, "level": c.level}
            for spec, c in cells
        ]
        worst = max((c.level for _, c in cells), key=check.severity)
        status = (
            _surface_summary(kind, name, facts)
            + (
                " ✅"
                if worst == "ok"
                else " — " + "; ".join(f"{spec} {c.text}" for spec, c in cells if c.level != "ok") + " ⚠️"
            )
            + in_module(_module_of(facts[0]))
        )
        fields = {"present": True, "facts": facts, "verdicts": verdicts}
        return Verdict(
            status=status, letters=SURFACE_LETTERS.get(worst, ""), cls=SURFACE_CLASSES[worst], fields=fields
        )

    out["differences"] = differences = item_differences(conn, ctx, (surface.item,), nid)
    out["groups"], out["strip"] = timeline(ctx.groups, state, describe, stored_deltas(differences))
    return out


def _surface_summary(kind: str, name: str, facts: list[dict[str, surfaces_q.Value]]) -> str:
    """The few words a status line says about a surface item in one build."""
    f = facts[0]
    if kind == "tracepoint":
        if not f["system"]:
            return "raw tracepoint only"
        return f"trace event {f['system']}/{name}" + (f" (class {f['class']})" if f["class"] != name else "")
    if kind == "syscall":
        return ", ".join(
            f"{x['abi']} nr {x['number']}"
            for x in sorted(facts, key=lambda x: (x["abi"] != "native", str(x["abi"]), int(x["number"] or 0)))
        )
    if kind == "lsm":
        return "hook" + (" with bpf_lsm" if f["bpf_lsm"] else " without bpf_lsm")
    if kind == "kfunc":
        return "kfunc" + (f" in {f['sets']}" if f["sets"] else "")
    return f"= {f['value']}"


# --------------------------------------------------------------------------- differences


def item_differences(
    conn: sqlite3.Connection, ctx: Context, kinds: tuple[str, ...], nid: int
) -> list[dict[str, object]] | None:
    """Differences per group for one item (its change item kinds): None without
    diff tables; else per group, per compared pair, whether it was computed and its changes."""
    if not ctx.diffs:
        return None
    pair_changes: dict[int, list[dict[str, str | None]]] = defaultdict(list)
    for c in changes_q.item_changes(conn, nid, kinds):
        pair_changes[c.pair_id].append(
            {"kind": c.kind, "change": c.change, "detail": c.detail, "old": c.old, "new": c.new}
        )
    pair_ids = {(p.build_a, p.build_b): p.id for p in changes_q.diff_pairs(conn)}
    groups: list[dict[str, object]] = []
    for group in ctx.groups:
        entries: list[dict[str, object]] = []
        for base, member in pairs(group.kind, group.members):
            a, b = base, member
            pid = pair_ids.get((a.build.id, b.build.id))
            if pid is None and (b.build.id, a.build.id) in pair_ids:  # stored the other way round: show it so
                pid, a, b = pair_ids[(b.build.id, a.build.id)], b, a
            entries.append(
                {
                    "pair": (base.build.id, member.build.id),  # as the timeline compares them
                    "a": a.label,
                    "b": b.label,
                    "computed": pid is not None,
                    "changes": pair_changes.get(pid, []) if pid is not None else [],
                    "url": f"/diff/{segment(a.build.name)}/{segment(b.build.name)}",
                }
            )
        groups.append({"name": group.name, "pairs": entries})
    return groups


def stored_deltas(differences: list[dict[str, object]] | None) -> Deltas:
    """The Δ marks of an item page, from its Differences section (item_differences),
    so that the two cannot disagree: (base, member) -> whether the stored diff of
    that pair has changes of the item; pairs whose diffs were not computed are
    left to the timeline's own comparison."""
    marks: dict[tuple[int, int], bool] = {}
    for group in differences or ():
        for entry in group["pairs"]:  # type: ignore[attr-defined]
            if entry["computed"]:
                marks[entry["pair"]] = bool(entry["changes"])
    return marks
