"""CO-RE field resolution against one build, as libbpf does it
(docs/concepts.md#checks).

A field dependency names its root type and the named members of its access
path ("sock.__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32"; anonymous members
and array indexes are not named). Resolution finds the kernel's types named
like the root after dropping a `___flavour` suffix, then each member among
the direct members of the type held so far, stepping through anonymous
structs and unions, and into the type a named member holds through
typedefs, qualifiers and arrays (struct_fields.type_layout_id). The last
member's kind must be compatible with what the program reads (libbpf's
bpf_core_fields_are_compat): struct/union vs struct/union, pointers with
pointers, ints with ints, enums by name, arrays element by element.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import NamedTuple

from ingest.bpf import types
from ingest.bpf.objects import essential_name
from ingest.queries import types as types_q
from ingest.queries.types import FieldRef

_COMPOSITE = frozenset(("struct", "union"))


class Resolution(NamedTuple):
    """The outcome of one field access on one build."""

    ok: bool
    reason: str | None  # None when ok; "absent", "field_missing", "kind_mismatch", "not_recorded"
    text: str  # "ok", "no field u6_addr32 in in6_addr.in6_u", ...


Members = Callable[[int], list[FieldRef]]  # layout id -> its rows (queries.types.member_reader)


def resolve_field(
    conn: sqlite3.Connection,
    build: int,
    path: str,
    local_kind: str | None = None,
    members: Members | None = None,
) -> Resolution:
    """Resolve field path `path` ("root.member.member") in build `build`;
    `local_kind` is the program's type of the last member (cdecl.type_kind
    spelling, "enum NAME" for enums), None to skip the kind check. The first
    candidate root layout that resolves wins; otherwise the first failure.
    `members` reads a layout's rows (default: from the database each time)."""
    read = members or types_q.member_reader(conn)
    root, *steps = path.split(".")
    name = essential_name(root)
    # A root the build has no struct or union of may be a typedef (atomic_long_t): what it resolves to.
    candidates = types_q.layouts(conn, build, name) or types.typedef_layouts(conn, build, name)
    if not candidates:
        return Resolution(False, "absent", f"struct {name} absent")
    first: Resolution | None = None
    for layout in candidates:
        found = _walk(conn, read, build, layout, name, steps, local_kind)
        if found.ok:
            return found
        first = first or found
    assert first is not None
    return first


def _walk(
    conn: sqlite3.Connection,
    read: Members,
    build: int,
    layout: int,
    where: str,
    steps: list[str],
    local_kind: str | None,
) -> Resolution:
    rows = read(layout)
    scope: int | None = None  # inside `layout`, the position whose members are searched
    for k, member in enumerate(steps):
        row = _direct_member(rows, scope, member)
        if row is None:
            return Resolution(False, "field_missing", f"no field {member} in {where}")
        where = f"{where}.{member}"
        if k + 1 == len(steps):
            return _compatible(row, where, local_kind)
        if row.type_layout_id is not None:
            rows, scope = read(row.type_layout_id), None
        elif row.type_kind is not None:  # recorded: the member holds no struct or union
            if row.type_kind.removeprefix("array ").startswith(("struct", "union")):
                return Resolution(False, "not_recorded", f"{where}: layout of {row.type_text} not recorded")
            return Resolution(False, "kind_mismatch", f"{where} is {row.type_text}, not a struct or union")
        elif any(r.parent == row.position for r in rows):  # older database: anonymous type, flattened here
            scope = row.position
        else:  # older database: a named aggregate, found by name
            inner = _aggregate_name(row.type_text)
            layouts = types_q.layouts(conn, build, inner) if inner else []
            if not layouts:
                return Resolution(False, "not_recorded", f"{where} is {row.type_text}, not a named struct")
            rows, scope = read(layouts[0]), None
    return Resolution(True, None, "ok")


def _direct_member(rows: list[FieldRef], scope: int | None, name: str) -> FieldRef | None:
    """The member `name` of the aggregate at `scope` (None: the layout itself),
    also inside its anonymous members, not inside named ones."""
    unnamed = {r.position for r in rows if r.name is None}
    inside = {scope}  # positions whose members are visible from scope
    for r in rows:  # parents precede their members
        if r.parent in inside:
            if r.name == name:
                return r
            if r.position in unnamed:
                inside.add(r.position)
    return None


def _compatible(row: FieldRef, where: str, local_kind: str | None) -> Resolution:
    """libbpf's bpf_core_fields_are_compat on the last member."""
    if local_kind is None or row.type_kind is None:
        return Resolution(True, None, "ok")
    local, target = local_kind, row.type_kind
    while local.startswith("array ") and target.startswith("array "):
        local, target = local[6:], target[6:]
    while target.startswith("array "):  # the access indexes into the array: its element
        target = target[6:]
    lkind, _, lname = local.partition(" ")
    if target == "enum":
        target = "enum " + _enum_name(row.type_text)
    tkind, _, tname = target.partition(" ")
    ptrs = ("ptr", "func_ptr")
    same = (
        (lkind in _COMPOSITE and tkind in _COMPOSITE)
        or (lkind in ptrs and tkind in ptrs)
        or (lkind == tkind and lkind in ("int", "float"))
        or (lkind == tkind == "enum" and essential_name(lname) == essential_name(tname))
    )
    if same:
        return Resolution(True, None, "ok")
    return Resolution(False, "kind_mismatch", f"{where} is {row.type_text}, the program reads {local_kind}")


def _enum_name(type_text: str) -> str:
    """ "enum pid_type" (or "const enum pid_type[4]") -> "pid_type"."""
    words = type_text.split("[")[0].split()
    return words[words.index("enum") + 1] if "enum" in words[:-1] else ""


def _aggregate_name(type_text: str) -> str | None:
    """`struct sched_entity` (or an array of it) -> sched_entity."""
    words = type_text.split("[")[0].split()
    if len(words) >= 2 and words[-2] in ("struct", "union") and "*" not in type_text:
        return words[-1]
    return None
