"""Pages over many items: /builds (the summary), /matrix and /search."""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

from ingest.queries import builds as builds_q
from ingest.queries import functions as functions_q
from ingest.queries import names as names_q
from ingest.queries import surfaces as surfaces_q
from ingest.queries import types as types_q
from ingest.queries.builds import BuildRow, BuildSummary
from ingest.web import charts
from ingest.web.charts import MatrixCell, MatrixColumn, MatrixRow
from ingest.web.context import Context, Links, Page
from ingest.web.items import SURFACE_TABLES, function_cell, function_status_line, in_module
from ingest.web.style import LEGEND
from ingest.web.timeline import Column, columns

MAX_MATRIX_NAMES = 400
SEARCH_LIMIT = 100


# --------------------------------------------------------------------------- /builds


@dataclass(frozen=True)
class SummaryRow:
    """One build's line of the summary table (and bar of the charts)."""

    build: BuildRow
    functions: int
    full: int
    selective: int
    declared: int
    plain: int
    transformed: int
    collisions: int
    duplicates: int
    structs: int
    unions: int
    enums: int
    symbols: int | None
    surfaces: list[dict[str, object]] | None  # None: not recorded for this build
    modules: int | None = None  # None: the build's modules were not read
    module_functions: int | None = None
    modules_url: str = ""

    @property
    def name(self) -> str:
        return self.build.name

    def count(self, key: str) -> int:
        """A count by name, for the charts."""
        value = getattr(self, key)
        return int(value)


def summary_page(conn: sqlite3.Connection, ctx: Context, links: Links) -> Page:
    """Per build: functions by status, types, symbols and the attach surfaces, with charts."""
    summaries = builds_q.build_summaries(conn)
    rows = []
    for b in ctx.builds.values():
        s = summaries[b.id]
        rows.append(
            SummaryRow(
                build=b,
                functions=s.functions,
                full=s.full_inline,
                selective=s.selective_inline,
                declared=s.declared_only,
                plain=s.functions - s.full_inline - s.selective_inline - s.declared_only,
                transformed=s.transformed,
                collisions=s.collisions,
                duplicates=s.duplicates,
                structs=s.structs,
                unions=s.unions,
                enums=s.enums,
                symbols=s.symbols,
                surfaces=_surface_counts(links, b, s),
                modules=s.modules,
                module_functions=s.module_functions,
                modules_url=links.url("modules_per_build", build=b.name, name=""),
            )
        )
    return {
        "rows": rows,
        "chart": charts.summary_chart(rows),
        "bars": charts.summary_bars(rows),
        "links": links.data("builds_summary"),
        "surfaces": any(r.surfaces for r in rows),
        "modules": any(r.modules is not None for r in rows),
    }


def _surface_counts(links: Links, build: BuildRow, s: BuildSummary) -> list[dict[str, object]] | None:
    """Attachability (kprobe-able, fentry-able and notrace functions) and the other surfaces of
    one build (docs/concepts.md#attachability, #surfaces), each linking to its canned query;
    None when the build predates them."""
    if not s.surfaces_recorded:
        return None
    attach = links.url("function_attach", build=build.name, name="", only="")
    counts = [
        ("kprobe ✓", s.kprobe_ok, attach),
        ("fentry ✓", s.fentry_ok if build.has_btf else 0, attach),
        ("notrace", s.notrace, links.url("function_attach", build=build.name, name="", only="notrace")),
    ]
    for label, count, query in (
        ("trace events", s.trace_events, "tracepoints_per_build"),
        ("raw tracepoints", s.raw_tracepoints, "tracepoints_per_build"),
        ("syscalls", s.syscalls, "syscalls_per_build"),
        ("compat syscalls", s.compat_syscalls, "syscalls_per_build"),
        ("LSM hooks", s.lsm_hooks, "lsm_hooks_per_build"),
        ("kfuncs", s.kfuncs, "kfuncs_per_build"),
        ("config options", s.config_options, "config_per_build"),
        ("kernel variables", s.variables, "variables_per_build"),
    ):
        counts.append((label, count, links.url(query, build=build.name, name="")))
    return [{"label": label, "count": count or 0, "url": url} for label, count, url in counts]


# --------------------------------------------------------------------------- /matrix


def split_names(text: str | None) -> list[str]:
    """Names pasted one per line or separated by spaces, commas or semicolons; no repeats."""
    return [n for n in dict.fromkeys(re.split(r"[\s,;]+", text or "")) if n]


def matrix_page(conn: sqlite3.Connection, ctx: Context, names: list[str]) -> Page:
    """Names x builds, each cell a function's strip letters, a type's presence,
    or a surface's (trace event, syscall, LSM hook, kfunc, variable, config option)."""
    ids = names_q.name_ids(conn, names)
    states = _matrix_states(conn, ids.values())
    cols = columns(ctx.groups)
    rows = [_matrix_row(name, ids.get(name), states, cols) for name in names]
    heads = [
        {
            "group": c.group.name,
            "first": c.position == 0,
            "label": c.member.label,
            "build": c.member.build,
            "base": c.base.build if c.base else None,
        }
        for c in cols
    ]
    picture = charts.matrix_picture(
        [MatrixColumn(label=c.member.label, build=c.member.build.name, first=c.position == 0) for c in cols],
        rows,
    )
    pages = {kind: f"/{seg}/" for kind, seg in _ROW_PAGES.items()}
    return {
        "names": names,
        "columns": heads,
        "rows": rows,
        "legend": LEGEND,
        "picture": picture,
        "pages": pages,
    }


class _MatrixStates(NamedTuple):
    """What the matrix shows of its names, by name id then build id."""

    funcs: dict[int, dict[int, functions_q.FunctionPresence]]
    types: dict[int, dict[int, list[int]]]  # layout ids
    surfaces: dict[int, dict[str, dict[int, list[str | None]]]]  # by surface kind: the facts
    recorded: dict[int, builds_q.SurfacesRecorded]  # by build id


def _matrix_states(conn: sqlite3.Connection, nids: Collection[int]) -> _MatrixStates:
    """The functions, types and surfaces of these names in every build."""
    funcs: dict[int, dict[int, functions_q.FunctionPresence]] = defaultdict(dict)
    for state in functions_q.function_presence(conn, nids):
        funcs[state.name_id][state.build_id] = state
    types: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for t in types_q.type_layouts(conn, nids):
        types[t.name_id][t.build_id].append(t.layout_id)
    surfaces: dict[int, dict[str, dict[int, list[str | None]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for s in surfaces_q.surface_presence(conn, nids):
        surfaces[s.name_id][s.kind][s.build_id].append(s.fact)
    return _MatrixStates(
        funcs=funcs, types=types, surfaces=surfaces, recorded=builds_q.surfaces_recorded(conn)
    )


def _matrix_row(name: str, nid: int | None, states: _MatrixStates, cols: list[Column]) -> MatrixRow:
    """One name's row: what it is (a function first, then a type, then a surface) and its cells."""
    kind = "function" if nid in states.funcs else "struct" if nid in states.types else None
    if kind is None and nid in states.surfaces:
        kind = next(k for k in surfaces_q.SURFACE_KINDS if k in states.surfaces[nid])
    cells = []
    for col in cols:
        b, base = col.member.build, (col.base.build if col.base else None)
        if nid is not None and kind is not None:
            letters, cls, changed, status = _matrix_cell(nid, kind, b, base, states)
        else:
            letters, cls, changed, status = "", "absent", False, "unknown name"
        cells.append(
            MatrixCell(
                letters=letters + ("Δ" if changed else ""),
                cls=cls,
                title=f"{name} in {col.member.label}: {status}",
            )
        )
    return MatrixRow(name=name, kind=kind, cells=cells)


def _matrix_cell(
    nid: int, kind: str, b: BuildRow, base: BuildRow | None, states: _MatrixStates
) -> tuple[str, str, bool, str]:
    """(letters, colour class, differs from `base`, status) of a name in build `b`."""
    if kind == "function":
        f = states.funcs[nid].get(b.id)
        letters, cls = function_cell(f, b)
        before = states.funcs[nid].get(base.id) if base else None
        changed = base is not None and _function_state(f) != _function_state(before)
        return letters, cls, changed, function_status_line(f, b)
    if kind == "struct":
        layouts = states.types[nid]
        st = tuple(sorted(layouts.get(b.id, ()))) or None
        letters, cls = ("", "absent") if st is None else ("C", "C") if len(st) > 1 else ("", "ok")
        changed = base is not None and st != (tuple(sorted(layouts.get(base.id, ()))) or None)
        return letters, cls, changed, "Absent ⚠️" if st is None else "✅"
    per_build = states.surfaces[nid][kind]
    letters, cls, status = _surface_cell(kind, per_build.get(b.id), states.recorded.get(b.id))
    changed = base is not None and sorted(map(str, per_build.get(b.id, ()))) != sorted(
        map(str, per_build.get(base.id, ()))
    )
    return letters, cls, changed, status


#: The page of a matrix row, by its kind (kernel variables have none).
_ROW_PAGES = {
    "function": "function",
    "struct": "struct",
    "tracepoint": "tracepoint",
    "syscall": "syscall",
    "lsm_hook": "lsm",
    "kfunc": "kfunc",
    "config": "config",
}

#: What each surface kind is called in a cell's status line.
_SURFACE_WORDS = {
    "tracepoint": "trace event",
    "syscall": "syscall",
    "lsm_hook": "LSM hook",
    "kfunc": "kfunc",
    "variable": "kernel variable",
    "config": "config option",
}


def _surface_cell(
    kind: str, facts: list[str | None] | None, recorded: builds_q.SurfacesRecorded | None
) -> tuple[str, str, str]:
    """(letters, colour class, status) of a surface in one build: present,
    absent, or "?" when the build does not record that kind."""
    word = _SURFACE_WORDS[kind]
    if facts:
        shown = ", ".join(sorted({f for f in facts if f}))
        if kind == "config":
            return (shown[:2], "absent" if shown == "n" else "ok", f"{word}, ={shown}")
        if kind == "kfunc":  # the fact is its module (None: vmlinux)
            return ("", "ok", word + in_module(shown))
        return ("", "ok", f"{word}" + (f" ({shown})" if shown else ""))
    known = recorded is not None and (
        recorded.config
        if kind == "config"
        else recorded.variables
        if kind == "variable"
        else recorded.surfaces
    )
    if not known:
        return ("?", "nodwarf", f"not recorded: the build has no {word}s on record")
    return ("", "absent", f"no such {word}")


def _function_state(f: functions_q.FunctionPresence | None) -> tuple[object, ...] | None:
    return None if f is None else (f.collision, f.inline, f.suffixes, f.prototype_id)


# --------------------------------------------------------------------------- /search


def search_page(
    conn: sqlite3.Connection, ctx: Context, links: Links, text: str, limit: int = SEARCH_LIMIT
) -> Page:
    """Names containing `text` and what each is (function in n builds, type kinds, other surfaces)."""
    use_index = names_q.indexed(conn, ctx.tables)
    found = names_q.matches(conn, text, limit + 1, ctx.tables, use_index)
    kinds = names_q.name_kinds(conn, [m.name_id for m in found[:limit]])
    kfunc_modules = surfaces_q.kfunc_modules(
        conn, [m.name_id for m in found[:limit] if kinds[m.name_id].kfunc_builds]
    )
    results = []
    for m in found[:limit]:
        k = kinds[m.name_id]
        present = {
            "tracepoints": k.tracepoint_builds,
            "syscalls": k.syscall_builds,
            "lsm_hooks": k.lsm_hook_builds,
            "kfuncs": k.kfunc_builds,
            "config_options": k.config_builds,
        }
        others = [seg for table, seg in SURFACE_TABLES.items() if table in ctx.tables and present[table]]
        results.append(
            {
                "name": m.name,
                "functions": k.function_builds,
                "types": list(k.type_kinds),
                "others": others,
                "variable": bool(k.variable_builds),
                "module": k.module_builds,
                "kfunc_modules": ", ".join(kfunc_modules.get(m.name_id, ())),
                "exact": m.name == text,
            }
        )
    return {
        "q": text,
        "results": results,
        "more": len(found) > limit,
        "indexed": use_index,
        "builds": len(ctx.builds),
        "links": links.data("search_names", q=text),
        "variables_url": links.url("variables_per_build", build="", name=""),
    }
