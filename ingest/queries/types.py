"""Types: the named structs, unions and enums of builds, their layouts (members,
enumerators, sizes) and the type texts members and prototypes refer to."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from ingest.model import Field
from ingest.queries._sql import NAME_ID, facts_only_in, in_chunks, module_join, module_name
from ingest.queries.database import member_refs_recorded

# --------------------------------------------------------------------------- named types


def has_type(conn: sqlite3.Connection, nid: int) -> bool:
    """Whether some build has a struct, union or enum of this name."""
    return conn.execute("SELECT 1 FROM types WHERE name_id = ? LIMIT 1", (nid,)).fetchone() is not None


class TypeRow(NamedTuple):
    build_id: int
    layout_id: int
    kind: str
    size: int
    module: str | None = None  # None: vmlinux has the name


def types(conn: sqlite3.Connection, nid: int) -> list[TypeRow]:
    """The layouts named `nid` per build: structs and unions before enums."""
    return [
        TypeRow(*r)
        for r in conn.execute(
            f"SELECT t.build_id, t.layout_id, t.kind, l.size, {module_name('t', conn)}"
            " FROM types t JOIN layouts l ON l.id = t.layout_id"
            " WHERE t.name_id = ? ORDER BY t.build_id, t.kind = 'enum', t.kind, t.layout_id",
            (nid,),
        )
    ]


class TypeEntry(NamedTuple):
    """A named struct, union or enum of a build."""

    name_id: int
    name: str
    kind: str
    layout_id: int
    module: str | None = None  # the module the layout is stored with; None: vmlinux has the name


def type_entries(conn: sqlite3.Connection, build: int) -> list[TypeEntry]:
    """Every named struct, union and enum of a build, with its module."""
    rows = conn.execute(
        "SELECT t.name_id, n.name, t.kind, t.layout_id, mn.name FROM types t JOIN names n ON n.id = t.name_id"
        f" {module_join('t', conn)} WHERE t.build_id = ?",
        (build,),
    )
    return list(map(TypeEntry._make, rows))


def type_entries_differing(
    conn: sqlite3.Connection, a: int, b: int
) -> tuple[list[TypeEntry], list[TypeEntry]]:
    """Both builds' named types of the names whose type facts (layout, kind, module)
    are not the same in both (docs/storage.md): the only names whose types can differ."""
    names = {
        nid
        for build, other in ((a, b), (b, a))
        for (nid,) in conn.execute(f"SELECT DISTINCT f.name_id FROM {facts_only_in('type')}", (other, build))
    }
    wanted = json.dumps(sorted(names))
    sql = (
        "SELECT t.name_id, n.name, t.kind, t.layout_id, mn.name FROM json_each(?) j"
        " CROSS JOIN types t ON t.name_id = j.value AND t.build_id = ?"
        f" JOIN names n ON n.id = t.name_id {module_join('t', conn)}"
    )
    entries_a, entries_b = ([TypeEntry(*r) for r in conn.execute(sql, (wanted, build))] for build in (a, b))
    return entries_a, entries_b


class TypeLayout(NamedTuple):
    name_id: int
    build_id: int
    layout_id: int


def type_layouts(conn: sqlite3.Connection, nids: Iterable[int]) -> list[TypeLayout]:
    """Layouts of these type names in every build that has them."""
    return [
        TypeLayout(*r)
        for r in conn.execute(
            "SELECT name_id, build_id, layout_id FROM types WHERE name_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(nids)),),
        )
    ]


def layouts(
    conn: sqlite3.Connection, build: int, name: str, kinds: Sequence[str] = ("struct", "union")
) -> list[int]:
    """The layout ids of the types named `name` of one of `kinds` (struct, union, enum) in `build`."""
    rows = conn.execute(
        f"SELECT layout_id FROM types WHERE build_id = ? AND name_id = {NAME_ID}"
        f" AND kind IN ({','.join('?' * len(kinds))})",
        (build, name, *kinds),
    )
    return [layout for (layout,) in rows]


# --------------------------------------------------------------------------- layouts


def layout_fields(conn: sqlite3.Connection, layout_ids: Iterable[int]) -> dict[int, list[Field]]:
    """layout id -> its members in order."""
    out: dict[int, list[Field]] = defaultdict(list)
    for lid, pos, name, type_text, decl, bit_offset, bit_size, byte_size, parent in conn.execute(
        "SELECT sf.layout_id, sf.position, sf.name, tt.text, dt.text, sf.bit_offset, sf.bit_size,"
        " sf.byte_size, sf.parent FROM struct_fields sf JOIN type_texts tt ON tt.id = sf.type_id"
        " JOIN type_texts dt ON dt.id = sf.decl_id"
        " WHERE sf.layout_id IN (SELECT value FROM json_each(?)) ORDER BY sf.layout_id, sf.position",
        (json.dumps(sorted(layout_ids)),),
    ):
        out[lid].append(
            Field(
                position=pos,
                name=name,
                type_text=type_text,
                decl=decl,
                bit_offset=bit_offset,
                bit_size=bit_size,
                byte_size=byte_size,
                parent=parent,
            )
        )
    return out


def enum_values(conn: sqlite3.Connection, layout_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
    """layout id -> its (enumerator, value) pairs in order."""
    out: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for lid, name, value in conn.execute(
        "SELECT layout_id, name, value FROM enum_values WHERE layout_id IN (SELECT value FROM json_each(?))"
        " ORDER BY layout_id, position",
        (json.dumps(sorted(layout_ids)),),
    ):
        out[lid].append((name, value))
    return out


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


class FieldRef(NamedTuple):
    """One row of a flattened layout (struct_fields) with the layout its type is, as CO-RE resolution walks it."""

    position: int
    name: str | None
    parent: int | None  # position of the anonymous container, None at top level
    type_text: str  # canonical when recorded
    type_kind: str | None  # None: not recorded (built before member type references)
    type_layout_id: int | None  # the struct/union/enum the member holds


def members(conn: sqlite3.Connection, layout: int, refs_recorded: bool | None = None) -> list[FieldRef]:
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
    return list(map(FieldRef._make, rows))


def member_reader(conn: sqlite3.Connection) -> Callable[[int], list[FieldRef]]:
    """members() of `conn`, each layout read once (ingest.bpf.check.BuildContext.members)."""
    refs = member_refs_recorded(conn)
    cache: dict[int, list[FieldRef]] = {}

    def read(layout: int) -> list[FieldRef]:
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


def type_texts(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str]:
    """{id: text} of type_texts rows."""
    return dict(in_chunks(conn, "SELECT id, text FROM type_texts WHERE id IN ({})", ids))
