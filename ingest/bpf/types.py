"""`type:` dependencies (docs/concepts.md#typedefs): the CO-RE type relocations
TYPE_EXISTS, TYPE_SIZE, TYPE_MATCHES and TYPE_ID_TARGET on a root that is not
a struct, union or enum, which for kernel names is a typedef (`pid_t`,
`atomic_long_t`, `u64`). libbpf takes as candidates the target types of the
local root's kind with its essential name; a typedef is found among the
build's typedefs, then (a program may spell it either way) its structs,
unions and enums."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from ingest.queries import typedefs as tq
from ingest.queries import types as types_q

#: C base type words: such a root is an INT/FLOAT of the kernel's BTF, which kernsurf does not record.
_BASE_WORDS = frozenset(
    ("void", "char", "short", "int", "long", "signed", "unsigned", "_Bool", "float", "double")
)


class TypeFound(NamedTuple):
    """What the build has under a `type:` dependency's name."""

    level: str  # ok, absent, unknown
    text: str


def find_type(conn: sqlite3.Connection, build: int, name: str, relo: str | None) -> TypeFound:
    """Whether `build` has type `name`: a typedef, else a struct, union or
    enum; `relo` is the CO-RE relocation kind (type_size shows the size)."""
    found = tq.typedefs(conn, build, name) if tq.recorded(conn, build) else []
    if found:
        first = found[0]
        text = f"typedef {first.target}"
        if relo == "type_size":
            text += f", {first.size} bytes" if first.size is not None else ", size unknown"
        return TypeFound("ok", text)
    for kinds in (("struct", "union"), ("enum",)):
        if types_q.layouts(conn, build, name, kinds):
            return TypeFound("ok", f"{'/'.join(kinds)} {name}")
    if set(name.split()) <= _BASE_WORDS:
        return TypeFound("unknown", f"{name} is a base type: base types are not recorded")
    if not tq.recorded(conn, build):
        return TypeFound("unknown", "typedefs not recorded for this build (re-ingest it with --replace)")
    return TypeFound("absent", f"no typedef, struct, union or enum {name}")


def typedef_layouts(conn: sqlite3.Connection, build: int, name: str) -> list[int]:
    """The layouts the typedefs named `name` resolve to (a CO-RE access rooted at one walks them)."""
    if not tq.recorded(conn, build):
        return []
    return [t.layout_id for t in tq.typedefs(conn, build, name) if t.layout_id is not None]
