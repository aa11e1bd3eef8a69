"""TYPE_MATCHES (`bpf_core_type_matches()`), as libbpf decides it
(__bpf_core_types_match in relo_core.c, called by libbpf.c with a
recursion limit of 32):

- modifiers and typedefs are skipped on both sides, then the names must
  match (essential names: `___flavour` dropped; an anonymous target matches
  only an anonymous local type);
- struct/union: the same kind; every local member matches a member of the
  target with a matching name (anonymous with anonymous) whose type matches
  in turn; behind a pointer, only the name and kind (or a forward
  declaration of that kind);
- enum/enum64: the same size, and every local enumerator is named in the target;
- int: the same name (checked first), size and signedness; pointers and
  arrays (the same count): what they point at or hold matches; function
  prototypes: the same parameters and return type;
- float and any other kind: no match.

The program's side is described when its object is read (local_shape(),
kept as Dependency.local, JSON); the kernel's comes from the layouts and
typedefs of the database: struct, union and enum members are followed
through struct_fields.type_layout_id, anything else is compared by its
canonical C text with qualifiers dropped and essential names, which carries
the names, pointer levels, array counts and parameter types the rules compare.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from ingest.bpf.objects import essential_name
from ingest.model import TypeGraph
from ingest.queries import typedefs as tq
from ingest.queries import types as types_q
from ingest.types import cdecl

_QUALIFIERS = re.compile(r"\b(const|volatile|restrict|_Atomic)\b\s*")
_WORD = re.compile(r"[A-Za-z_]\w*")
_SKIPPED = frozenset(("const", "volatile", "restrict", "atomic", "typedef"))
_TAGGED = ("struct", "union", "enum")


def match_text(text: str) -> str:
    """A canonical C type text as the match compares it: qualifiers dropped, essential names."""
    text = _QUALIFIERS.sub("", text)
    return " ".join(_WORD.sub(lambda m: essential_name(m.group()), text).split())


# --------------------------------------------------------------------------- the program's side


def _resolved(graph: TypeGraph, tid: int) -> int:
    for _ in range(len(graph) + 1):
        t = graph.get(tid)
        if t is None or t.kind not in _SKIPPED:
            return tid
        tid = t.ref
    return tid


def _describe(graph: TypeGraph, tid: int, depth: int = 0) -> dict[str, Any]:
    """One type below modifiers and typedefs as the match needs it; struct,
    union and enum members by value are described too (behind a pointer only
    the name and kind count, which the text carries)."""
    rid = _resolved(graph, tid)
    t = graph.get(rid)
    if t is None or rid == 0:
        return {"kind": "void", "text": "void"}
    out: dict[str, Any] = {"kind": t.kind, "text": match_text(cdecl.canonical_type_name(graph, rid))}
    if t.kind in ("struct", "union") and depth < 32:
        out["members"] = [[m.name or "", _describe(graph, m.type, depth + 1)] for m in t.members or ()]
    elif t.kind == "enum":
        out["size"] = t.size
        out["values"] = [essential_name(name) for name, _ in t.enumerators or ()]
    elif t.kind == "array" and depth < 32:
        out["elem"] = _describe(graph, t.ref, depth + 1)
    return out


def local_shape(graph: TypeGraph, tid: int) -> str:
    """The program's root type of a TYPE_MATCHES relocation, as JSON (Dependency.local)."""
    return json.dumps(_describe(graph, tid), sort_keys=True)


# --------------------------------------------------------------------------- the kernel's side


def matches(
    conn: sqlite3.Connection, build: int, kind: str, name: str, local: str
) -> tuple[bool, str] | None:
    """Whether a kernel type of dependency kind `kind` (struct, enum, type) named
    `name` matches the program's `local` shape: (matched, why); None when the
    build has no candidate of that name."""
    shape = json.loads(local)
    found: list[tuple[bool, str]] = []
    if kind == "type":  # the program's root is a typedef: the kernel's typedefs of that name
        for t in tq.typedefs(conn, build, name) if tq.recorded(conn, build) else []:
            found.append(_verdict(conn, shape, t.kind, match_text(t.canon), t.layout_id, f"typedef {name}"))
    else:
        for layout in types_q.layouts(
            conn, build, name, ("enum",) if kind == "enum" else ("struct", "union")
        ):
            tkind = tq.layout_kind(conn, layout)
            found.append(_verdict(conn, shape, tkind, f"{tkind} {name}", layout, f"{tkind} {name}"))
    if not found:
        return None
    return next((f for f in found if f[0]), found[0])


def _verdict(
    conn: sqlite3.Connection, shape: dict[str, Any], tkind: str, ttext: str, layout: int | None, what: str
) -> tuple[bool, str]:
    why: list[str] = []
    if _match(conn, shape, tkind, ttext, layout, why):
        return True, f"matches {what}"
    return False, f"{what}: {why[0] if why else 'differs'}"


def _match(
    conn: sqlite3.Connection, desc: dict[str, Any], tkind: str, ttext: str, layout: int | None, why: list[str]
) -> bool:
    """The program's type `desc` against the kernel's (its type_kind, canonical text, held layout)."""
    kind = desc["kind"]
    if kind in ("struct", "union", "enum"):
        if tkind != kind or layout is None:
            why.append(f"{ttext} is not a {kind}")
            return False
        if _tag(ttext) != _tag(desc["text"]):
            why.append(f"{ttext} is not {desc['text']}")
            return False
        return _enum(conn, desc, layout, why) if kind == "enum" else _composite(conn, desc, layout, why)
    if kind == "array" and desc.get("elem", {}).get("kind") in _TAGGED:
        if desc["text"] != ttext:  # the count and the element's name
            why.append(f"{ttext}, the program's {desc['text']}")
            return False
        return _match(conn, desc["elem"], tkind.removeprefix("array "), _element(ttext), layout, why)
    if kind == "float" or tkind == "float":
        why.append("floats never match")
        return False
    if desc["text"] != ttext:
        why.append(f"{ttext}, the program's {desc['text']}")
        return False
    return True


def _composite(conn: sqlite3.Connection, desc: dict[str, Any], layout: int, why: list[str]) -> bool:
    rows = [r for r in types_q.members(conn, layout) if r.parent is None]  # its direct members
    if len(desc.get("members", ())) > len(rows):
        why.append(f"the program's {desc['text']} has more members ({len(desc['members'])} > {len(rows)})")
        return False
    for name, member in desc.get("members", ()):
        same = [r for r in rows if (r.name or "") == name]
        inner: list[str] = []
        if not any(
            _match(conn, member, r.type_kind or "", match_text(r.type_text), r.type_layout_id, inner)
            for r in same
        ):
            label = f"member {name or '(anonymous)'}"
            why.append(f"{label}: {inner[0]}" if inner else f"{label} is missing")
            return False
    return True


def _enum(conn: sqlite3.Connection, desc: dict[str, Any], layout: int, why: list[str]) -> bool:
    size, names = tq.enum_shape(conn, layout)
    if size != desc.get("size"):
        why.append(f"{size} bytes, the program's {desc.get('size')}")
        return False
    have = {essential_name(n) for n in names}
    missing = [v for v in desc.get("values", ()) if v not in have]
    if missing:
        why.append(f"no enumerator {', '.join(missing[:3])}")
        return False
    return True


def _tag(text: str) -> str:
    """ "struct foo" -> "foo", "struct {...}" -> "" (anonymous)."""
    name = text.split()[-1] if text.startswith(_TAGGED) else text
    return "" if name == "{...}" else name


def _element(text: str) -> str:
    """ "struct foo [4]" -> "struct foo"."""
    return text.split("[", 1)[0].strip()
