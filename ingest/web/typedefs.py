"""/type/<name>: a typedef on every build (docs/concepts.md#typedefs): the
type it names, that type resolved, its size, and the struct, union or enum
it resolves to (a link to its page, or its members when it is anonymous)."""

from __future__ import annotations

import sqlite3

from ingest.model import Layout
from ingest.queries import typedefs as tq
from ingest.queries import types as types_q
from ingest.types.cdecl import layout_text
from ingest.web.context import Context, Page

_TAGGED = ("struct ", "union ", "enum ")


def typedef_page(conn: sqlite3.Connection, ctx: Context, name: str) -> Page:
    """The page of typedef `name`: one row per build, in group order, "absent"
    where a build that records typedefs lacks it."""
    found = {t.build_id: t for t in tq.across_builds(conn, name)} if "typedefs" in ctx.tables else {}
    rows = []
    for group in ctx.groups:
        for member in group.members:
            t = found.get(member.build.id)
            rows.append(
                {
                    "group": group.name,
                    "label": member.label,
                    "build": member.build.name,
                    "present": t is not None,
                    "recorded": t is not None or tq.recorded(conn, member.build.id),
                    "declaration": f"typedef {t.target} {name};" if t else None,
                    "resolved": t.canon if t else None,
                    "kind": t.kind if t else None,
                    "size": t.size if t else None,
                    "link": _link(t.canon) if t else None,
                    "members": _members(conn, t.layout_id, t.canon) if t else None,
                }
            )
    return {"name": name, "found": bool(found), "rows": rows}


def _link(canon: str) -> str | None:
    """/struct/<tag> for a typedef of a named struct, union or enum."""
    if canon.startswith(_TAGGED) and "{...}" not in canon and not canon.endswith(("*", "]", ")")):
        return "/struct/" + canon.split()[-1]
    return None


def _members(conn: sqlite3.Connection, layout: int | None, canon: str) -> str | None:
    """The C text of the anonymous struct, union or enum the typedef names."""
    if layout is None or "{...}" not in canon:
        return None
    kind, size = tq.layout_kind(conn, layout), tq.layout_size(conn, layout)
    fields, values = types_q.layout_fields(conn, {layout}), types_q.enum_values(conn, {layout})
    text = layout_text(
        Layout(kind=kind, name="", size=size, fields=fields.get(layout, []), values=values.get(layout, []))
    )
    return text.replace(f"{kind}  {{", f"{kind} {{", 1)  # no name between the keyword and the brace
