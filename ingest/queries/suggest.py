"""What `kernsurf check` reads to suggest a way out of a ✗ (ingest.bpf.suggest):
callers, the tracepoints called in a function, a function's symbols, the
functions declared in one file, a field's neighbours."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import NamedTuple

_NAME_ID = "(SELECT id FROM names WHERE name = ?)"


class CallerRow(NamedTuple):
    name: str  # the concrete caller
    sites: int


def callers(conn: sqlite3.Connection, build: int, name: str, kind: str) -> list[CallerRow]:
    """The functions of `build` that call `name` (kind direct) or hold inlined
    copies of it (kind inline), most sites first."""
    rows = conn.execute(
        "SELECT rn.name, sum(c.sites) FROM instances ce"
        " JOIN callers c ON c.callee_id = ce.id AND c.build_id = ce.build_id"
        " JOIN instance_facts r ON r.id = c.caller_id JOIN names rn ON rn.id = r.name_id"
        f" WHERE ce.build_id = ? AND ce.name_id = {_NAME_ID} AND c.kind = ?"
        " GROUP BY rn.name ORDER BY 2 DESC, 1",
        (build, name, kind),
    )
    return list(map(CallerRow._make, rows))


class TraceCall(NamedTuple):
    """A trace_<event>() instance of a compile unit: the copy its functions call."""

    id: int  # the instance fact (docs/storage.md): the same on every build that has it
    event: str


def trace_calls(conn: sqlite3.Connection, cu_path_id: int) -> list[TraceCall]:
    """The trace_<event>() instances of compile unit `cu_path_id` on any build."""
    rows = conn.execute(
        "SELECT ce.id, substr(tn.name, 7) FROM instance_facts ce JOIN names tn ON tn.id = ce.name_id"
        " WHERE ce.cu_path_id = ? AND tn.name LIKE 'trace!_%' ESCAPE '!'",
        (cu_path_id,),
    )
    return list(map(TraceCall._make, rows))


class EventCall(NamedTuple):
    caller: str  # the function whose code calls trace_<event>()
    event: str
    system: str


def events_in(
    conn: sqlite3.Connection,
    build: int,
    functions: Sequence[str],
    unit_calls: Callable[[int], Sequence[TraceCall]],
) -> list[EventCall]:
    """The trace events `functions` of `build` fire: trace_<event>() is a static
    inline of a header, one instance per compile unit, so its copy inlined into
    (or called from) a function is the instance of that function's unit.
    `unit_calls` gives a unit's trace_ instances (trace_calls, or the caller's
    copy of its answers: every build and function of a unit asks the same)."""
    instances = conn.execute(
        "SELECT fn.name, f.id, f.cu_path_id FROM names fn CROSS JOIN instances f ON f.name_id = fn.id"
        " WHERE f.build_id = ? AND fn.name IN (SELECT value FROM json_each(?)) AND f.cu_path_id IS NOT NULL",
        (build, json.dumps(list(functions))),
    )
    # (caller, caller instance, trace_ instance, event): the edges to look for
    calls = [(name, f, call.id, call.event) for name, f, cu in instances for call in unit_calls(cu)]
    if not calls:
        return []
    rows = conn.execute(
        "SELECT DISTINCT json_extract(j.value, '$[0]'), json_extract(j.value, '$[3]'), t.system"
        " FROM json_each(?) j CROSS JOIN callers c ON c.callee_id = json_extract(j.value, '$[2]')"
        "  AND c.caller_id = json_extract(j.value, '$[1]') AND c.build_id = ?"
        " CROSS JOIN names en ON en.name = json_extract(j.value, '$[3]')"
        " CROSS JOIN tracepoints t ON t.name_id = en.id AND t.build_id = c.build_id"
        " WHERE t.system IS NOT NULL ORDER BY 1, 2",
        (json.dumps(calls), build),
    )
    return list(map(EventCall._make, rows))


class SymbolRow(NamedTuple):
    name: str
    ftrace: int | None
    kprobe_blocked: str | None


def stem_symbols(conn: sqlite3.Connection, build: int, stem: str) -> list[SymbolRow]:
    """The symbols of `build` whose stem is `stem` (foo, foo.isra.0, foo.cold)."""
    rows = conn.execute(
        "SELECT n.name, s.ftrace, s.kprobe_blocked FROM symbols s JOIN names n ON n.id = s.name_id"
        f" WHERE s.stem_id = {_NAME_ID} AND s.build_id = ? ORDER BY n.name",
        (stem, build),
    )
    return list(map(SymbolRow._make, rows))


class Declaration(NamedTuple):
    build_id: int
    path: str  # the declaration's file
    line: int | None
    cu: str  # the compile unit defining it


def declarations(conn: sqlite3.Connection, name: str) -> list[Declaration]:
    """Where function `name` is declared and defined, on every build that has it."""
    rows = conn.execute(
        "SELECT DISTINCT i.build_id, p.path, i.decl_line, c.path FROM instances i"
        " JOIN paths p ON p.id = i.decl_path_id JOIN paths c ON c.id = i.cu_path_id"
        f" WHERE i.name_id = {_NAME_ID} AND i.defined ORDER BY i.build_id, p.path",
        (name,),
    )
    return list(map(Declaration._make, rows))


class Declared(NamedTuple):
    name: str
    path: str  # its declaration's file
    line: int | None


def defined_in(conn: sqlite3.Connection, build: int, cu: str, paths: Sequence[str]) -> list[Declared]:
    """The functions compile unit `cu` of `build` defines and declares in one of the
    files `paths` (a unit's other functions, mostly a header's inlines, are left unread)."""
    rows = conn.execute(
        "SELECT n.name, p.path, min(i.decl_line) FROM instances i JOIN names n ON n.id = i.name_id"
        " JOIN paths p ON p.id = i.decl_path_id"
        " WHERE i.build_id = ? AND i.cu_path_id = (SELECT id FROM paths WHERE path = ?) AND i.defined"
        " AND i.decl_path_id IN (SELECT id FROM paths WHERE path IN (SELECT value FROM json_each(?)))"
        " GROUP BY n.name, p.path",
        (build, cu, json.dumps(list(paths))),
    )
    return list(map(Declared._make, rows))


def param_types(conn: sqlite3.Connection, build: int, name: str) -> tuple[str, ...] | None:
    """The canonical parameter types of function `name` in `build`, None without a prototype."""
    row = conn.execute(
        f"SELECT prototype_id FROM functions WHERE build_id = ? AND name_id = {_NAME_ID}", (build, name)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    params = conn.execute(
        "SELECT coalesce(c.text, t.text) FROM prototype_params p JOIN type_texts t ON t.id = p.type_id"
        " LEFT JOIN type_texts c ON c.id = p.canon_id WHERE p.prototype_id = ? ORDER BY p.position",
        (row[0],),
    )
    return tuple(text for (text,) in params)


class MemberOffset(NamedTuple):
    position: int
    name: str | None
    parent: int | None
    bit_offset: int
    bit_size: int  # bitfield width, 0 otherwise
    byte_size: int | None
    type_text: str


def member_offsets(conn: sqlite3.Connection, build: int, root: str) -> list[MemberOffset]:
    """Every row of the layouts of struct or union `root` on `build`, with offsets, in position order."""
    rows = conn.execute(
        "SELECT f.position, f.name, f.parent, f.bit_offset, f.bit_size, f.byte_size, t.text"
        " FROM types ty JOIN struct_fields f ON f.layout_id = ty.layout_id JOIN type_texts t ON t.id = f.type_id"
        f" WHERE ty.build_id = ? AND ty.name_id = {_NAME_ID} AND ty.kind IN ('struct', 'union')"
        " ORDER BY ty.layout_id, f.position",
        (build, root),
    )
    return list(map(MemberOffset._make, rows))
