"""Differences between two builds (docs/concepts.md#differences), from the stored rows.

    changes = diff_builds(conn, "6.1.0-56-amd64", "6.12.113+deb13-amd64", kinds={"struct"})
    compute_group_diffs(conn)        # every pair the groups define, stored in `changes`

Functions: added/removed; parameters added, removed, renamed (same position
and type, new name), retyped and reordered (the relative order of the
parameters present in both changed; an insertion before a parameter is not a
reorder); return type; status (inline, declared only, transformation suffixes,
collision type, symbol lost/gained). Parameters are matched by name first, then
by position.

Structs and unions: added/removed, size, fields added/removed/retyped/moved.
Fields are matched by name; a field inside a named member is `outer.inner`;
anonymous containers are transparent for the names inside them (as in C) and are
themselves keyed `{first_named_member}`. Bitfields compare as `type:bits`.
Enums: values added/removed/changed.

Types are compared by meaning, using the canonical (typedef-resolved) texts the
ingest stores beside the printed ones: a change whose canonical texts are equal
is a "typedef renamed", one that only adds or drops const/volatile a "qualifier
changed", a struct/union/enum renamed with an identical layout (the old tag gone
from B, the new one absent from A) a "tag renamed"; anything else is a "type
changed". Builds ingested before canonical texts were recorded compare by
printed text. `typedef struct {...} atomic_t`-style anonymous types resolve to
`struct {...}`, which says nothing, so they never count as a typedef rename.

Builds that lack a fact are not compared on it: a build without DWARF (BTF
only) has no inline or collision status and cannot see functions that have no
symbol; without a symbol table, symbols and suffixes are not compared.

A change belongs to its pair only: nothing is carried forward. The vocabulary
is the change_kinds table of schema.sql (CHANGE_KINDS here, a test checks).
Stored rows leave out the prototype of a function added or removed (the build
holds it; the change_list view joins it back): see Change.stored_row().
"""

from __future__ import annotations

import fnmatch
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingest import db
from ingest.diff_surfaces import SURFACE_DIFFS, SURFACE_ITEMS, attach_changes
from ingest.errors import BadKind, UnknownBuild

#: Bumped when the algorithm changes what it reports: stored pairs are recomputed.
DIFF_VERSION = 2

ITEM_KINDS = ("function", "struct", "union", "enum", *SURFACE_ITEMS)
TYPE_ITEMS = ("struct", "union", "enum")

#: Every change kind, in display order (schema.sql's change_kinds rows).
CHANGE_KINDS = (
    "added",
    "removed",
    "param added",
    "param removed",
    "param renamed",
    "param type changed",
    "param typedef renamed",
    "param qualifier changed",
    "param tag renamed",
    "params reordered",
    "return type changed",
    "return typedef renamed",
    "return qualifier changed",
    "return tag renamed",
    "prototype added",
    "prototype removed",
    "inline changed",
    "declared only changed",
    "became transformed",
    "stopped being transformed",
    "transformation changed",
    "collision changed",
    "symbol lost",
    "symbol gained",
    "attachability lost",
    "attachability gained",
    "size changed",
    "field added",
    "field removed",
    "field type changed",
    "field typedef renamed",
    "field qualifier changed",
    "field tag renamed",
    "field offset changed",
    "value added",
    "value removed",
    "value changed",
    "event class changed",
    "event struct changed",
    "event function changed",
    "format changed",
    "raw prototype changed",
    "syscall number changed",
    "syscall symbol changed",
    "hook prototype changed",
    "bpf_lsm changed",
    "kfunc flags changed",
    "kfunc sets changed",
    "config changed",
)
DECLARED_ONLY = "Declared only"
_QUALIFIERS = frozenset(("const", "volatile", "restrict", "_Atomic"))
_TAGS = frozenset(("struct", "union", "enum"))
_TOKEN = re.compile(r"[A-Za-z_0-9]+|\S")


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between build A and build B."""

    item_kind: str  # function, struct, union or enum
    name: str  # the item's name
    change_kind: str  # one of CHANGE_KINDS
    detail: str | None = None  # the parameter, field or enumerator concerned
    old: str | None = None  # its value in A (type text, offset, status, ...)
    new: str | None = None  # its value in B

    def row(self) -> db.ChangeRow:
        return (self.item_kind, self.name, self.change_kind, self.detail, self.old, self.new)

    def stored_row(self) -> db.ChangeRow:
        """row() as stored: the prototype of a function added or removed is
        left out (the build holds it; the change_list view joins it back)."""
        if self.item_kind == "function" and self.change_kind in ("added", "removed"):
            return (self.item_kind, self.name, self.change_kind, self.detail, None, None)
        return self.row()

    def as_dict(self) -> dict:
        return {
            "item_kind": self.item_kind,
            "name": self.name,
            "change_kind": self.change_kind,
            "detail": self.detail,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True, slots=True)
class PairResult:
    """What compute_group_diffs did for one pair."""

    group_id: int
    build_a: int
    build_b: int
    computed: bool  # False: the stored rows were current
    n_changes: int
    seconds: float


# --------------------------------------------------------------------------- builds


def resolve_build(conn: sqlite3.Connection, ref: str | int) -> int:
    """The id of the build `ref` names: its name, its id, or a prefix (4+ hex
    digits) of its build-id. Raises UnknownBuild listing the stored builds."""
    builds = [
        (bid, name, bytes(b).hex() if isinstance(b, bytes) else b, arch)  # some databases hold blobs
        for bid, name, b, arch in db.list_builds(conn)
    ]
    text = str(ref).strip()
    for bid, name, _, _ in builds:
        if name == text:
            return bid
    if text.isdigit():
        for bid, *_ in builds:
            if bid == int(text):
                return bid
    if len(text) >= 4 and re.fullmatch(r"[0-9a-fA-F]+", text):
        hits = [b for b in builds if b[2] and b[2].lower().startswith(text.lower())]
        if len(hits) == 1:
            return hits[0][0]
        if hits:
            raise UnknownBuild(
                f"build-id prefix {text!r} matches several builds: " + ", ".join(b[1] for b in hits)
            )
    if not builds:
        raise UnknownBuild(
            f"no build {text!r}: the database holds no builds (add one with `kernsurf ingest`)"
        )
    listing = "; ".join(
        f"{name} (id {bid}" + (f", build-id {b[:12]})" if b else ")") for bid, name, b, _ in builds
    )
    raise UnknownBuild(f"no build {text!r}; available builds: {listing}")


# --------------------------------------------------------------------------- types by meaning


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


class _Meaning:
    """Classifies a type change by comparing printed and canonical texts;
    `tag_layouts(side, kind, name)` gives the layout ids of a tag in A or B."""

    def __init__(self, tag_layouts: Callable[[int, str, str], tuple[int, ...] | None]):
        self.tag_layouts = tag_layouts

    def change(self, a: str, ca: str | None, b: str, cb: str | None) -> str | None:
        """None when the types are the same, else "type changed", "typedef
        renamed", "qualifier changed" or "tag renamed"."""
        if ca is None or cb is None:  # a build ingested before canonical texts: printed texts only
            ca, cb = a, b
        if ca == cb:
            if a == b:
                return None
            return "typedef renamed" if "{...}" not in ca else "type changed"
        ta, tb = _tokens(ca), _tokens(cb)
        if [t for t in ta if t not in _QUALIFIERS] == [t for t in tb if t not in _QUALIFIERS]:
            return "qualifier changed"
        if self.tags_renamed(ta, tb):
            return "tag renamed"
        return "type changed"

    def tags_renamed(self, ta: list[str], tb: list[str]) -> bool:
        """Whether the canonical token lists differ only in tag names, each old
        tag gone from B, each new one absent from A, with identical layouts."""
        if len(ta) != len(tb) or ta == tb:
            return False
        for k, (x, y) in enumerate(zip(ta, tb)):
            if x == y:
                continue
            kind = ta[k - 1] if k else None
            if kind not in _TAGS or tb[k - 1] != kind:
                return False
            old, new = self.tag_layouts(0, kind, x), self.tag_layouts(1, kind, y)
            if not old or old != new or self.tag_layouts(1, kind, x) or self.tag_layouts(0, kind, y):
                return False
        return True


def _shown(text: str, canon: str | None, other_text: str, other_canon: str | None) -> str:
    """A type as old/new shows it: the printed text, plus the canonical text
    when the printed texts are equal (a typedef that changed underneath)."""
    if text == other_text and canon and other_canon and canon != other_canon:
        return f"{text} (= {canon})"
    return text


# --------------------------------------------------------------------------- the diff


class _Pair:
    """Everything one diff reads, loaded lazily and once."""

    def __init__(self, conn: sqlite3.Connection, a: int, b: int, match: Callable[[str], bool]):
        self.conn, self.match = conn, match
        self.facts = (db.build_facts(conn, a), db.build_facts(conn, b))
        self._types: tuple[list, list] | None = None
        self._tags: tuple[dict, dict] | None = None
        self.meaning = _Meaning(self.tag_layouts)

    def types(self) -> tuple[list, list]:
        """type_entries of A and B (all names: tag renames look beyond the pattern)."""
        if self._types is None:
            self._types = (
                db.type_entries(self.conn, self.facts[0]["id"]),
                db.type_entries(self.conn, self.facts[1]["id"]),
            )
        return self._types

    def tag_layouts(self, side: int, kind: str, name: str) -> tuple[int, ...] | None:
        if self._tags is None:
            tags: tuple[dict, dict] = (defaultdict(list), defaultdict(list))
            for k, rows in enumerate(self.types()):
                for _, tag, tkind, layout in rows:
                    tags[k][(tkind, tag)].append(layout)
            self._tags = tuple({key: tuple(sorted(v)) for key, v in t.items()} for t in tags)
        return self._tags[side].get((kind, name))

    # ----------------------------------------------------------------- functions

    def functions(self) -> list[Change]:
        fa, fb = self.facts
        rows = [
            {r[0]: r for r in db.function_states(self.conn, f["id"]) if self.match(r[1])} for f in (fa, fb)
        ]
        ra, rb = rows
        protos: set[int] = set()
        for nid, x in ra.items():
            y = rb.get(nid)
            if y is None or x[6] != y[6]:
                protos.update(p for p in (x[6], y and y[6]) if p)
        protos.update(y[6] for nid, y in rb.items() if nid not in ra and y[6])
        details, params = db.prototype_details(self.conn, protos)
        ids = {t for d in details.values() for t in d[1:3]} | {
            t for ps in params.values() for p in ps for t in p[2:4]
        }
        texts = db.type_texts(self.conn, {t for t in ids if t is not None})
        out: list[Change] = []
        symtab = fa["has_symtab"] and fb["has_symtab"]
        for nid in sorted(ra.keys() | rb.keys()):
            x, y = ra.get(nid), rb.get(nid)
            if y is None:
                # a build without DWARF (BTF only) cannot see names that have no symbol
                if fb["has_dwarf"] or not fa["has_dwarf"] or x[5] > 0:
                    out.append(Change("function", x[1], "removed", old=details[x[6]][0] if x[6] else None))
                continue
            if x is None:
                if fa["has_dwarf"] or not fb["has_dwarf"] or y[5] > 0:
                    out.append(Change("function", y[1], "added", new=details[y[6]][0] if y[6] else None))
                continue
            name = x[1]
            if x[6] != y[6]:
                if x[6] is None:
                    out.append(Change("function", name, "prototype added", new=details[y[6]][0]))
                elif y[6] is None:
                    out.append(Change("function", name, "prototype removed", old=details[x[6]][0]))
                else:
                    out.extend(
                        Change("function", name, *c)
                        for c in self.prototype(
                            details[x[6]], params[x[6]], details[y[6]], params[y[6]], texts
                        )
                    )
            out.extend(Change("function", name, *c) for c in _status(x, y, symtab))
        if fa["surfaces"] and fb["surfaces"]:
            names = {nid: r[1] for nid, r in ra.items()}
            out.extend(Change(*c) for c in attach_changes(self.conn, fa["id"], fb["id"], names, self.match))
        return out

    def prototype(
        self, pa: tuple, params_a: list, pb: tuple, params_b: list, texts: dict[int, str]
    ) -> list[tuple]:
        """(change_kind, detail, old, new) between two prototypes."""
        out: list[tuple] = []

        def side(proto: tuple, params: list) -> list[tuple]:
            got = [(name, texts[t], texts.get(c) if c is not None else None) for _, name, t, c in params]
            if proto[3]:
                got.append(("...", "...", "..."))
            return got

        a, b = side(pa, params_a), side(pb, params_b)
        pairs, gone, new, renamed = _match_params(a, b)
        for i in gone:
            out.append(("param removed", _pname(a, i), a[i][1], None))
        for j in new:
            out.append(("param added", _pname(b, j), None, b[j][1]))
        for i, j in renamed:
            out.append(("param renamed", f"#{j}", a[i][0], b[j][0]))
        for i, j in pairs:
            (_, ta, ca), (_, tb, cb) = a[i], b[j]
            how = self.meaning.change(ta, ca, tb, cb)
            if how:
                out.append((f"param {how}", _pname(b, j), _shown(ta, ca, tb, cb), _shown(tb, cb, ta, ca)))
        order = sorted(pairs, key=lambda p: p[0])
        if [j for _, j in order] != sorted(j for _, j in order):
            out.append(
                (
                    "params reordered",
                    None,
                    ", ".join(_pname(a, i) for i, _ in order),
                    ", ".join(_pname(b, j) for _, j in sorted(order, key=lambda p: p[1])),
                )
            )
        ra, rb = texts[pa[1]], texts[pb[1]]
        ca = texts.get(pa[2]) if pa[2] is not None else None
        cb = texts.get(pb[2]) if pb[2] is not None else None
        how = self.meaning.change(ra, ca, rb, cb)
        if how:
            out.append((f"return {how}", None, _shown(ra, ca, rb, cb), _shown(rb, cb, ra, ca)))
        return out

    # ----------------------------------------------------------------- structs, unions, enums

    def types_changes(self, items: set[str]) -> list[Change]:
        sides: tuple[dict, dict] = (defaultdict(list), defaultdict(list))
        for k, rows in enumerate(self.types()):
            for _, name, kind, layout in rows:
                if kind in items and self.match(name):
                    sides[k][(kind, name)].append(layout)
        ea, eb = ({key: sorted(v) for key, v in s.items()} for s in sides)
        differing = [key for key in ea.keys() | eb.keys() if ea.get(key) != eb.get(key)]
        need = {layout for key in differing for layout in ea.get(key, []) + eb.get(key, [])}
        sizes, fields, values = db.layout_details(self.conn, need)
        texts = db.type_texts(
            self.conn, {t for fs in fields.values() for f in fs for t in f[2:4] if t is not None}
        )
        out: list[Change] = []
        for kind, name in sorted(differing, key=lambda k: (k[1], k[0])):
            la, lb = ea.get((kind, name), []), eb.get((kind, name), [])
            common = set(la) & set(lb)
            ra, rb = [x for x in la if x not in common], [x for x in lb if x not in common]
            many_a = f"{len(la)} definitions" if len(la) > 1 else None
            many_b = f"{len(lb)} definitions" if len(lb) > 1 else None
            pairs, left_a, left_b = _pair_layouts(ra, rb, fields, values)
            for x in left_a:
                out.append(Change(kind, name, "removed", many_a, str(sizes[x]), None))
            for y in left_b:
                out.append(Change(kind, name, "added", many_b, None, str(sizes[y])))
            for x, y in pairs:
                if sizes[x] != sizes[y]:
                    out.append(Change(kind, name, "size changed", None, str(sizes[x]), str(sizes[y])))
                if kind == "enum":
                    out.extend(Change(kind, name, *c) for c in _enum_changes(values[x], values[y]))
                else:
                    out.extend(
                        Change(kind, name, *c) for c in self.field_changes(fields[x], fields[y], texts)
                    )
        return out

    def field_changes(self, fa: list, fb: list, texts: dict[int, str]) -> list[tuple]:
        a, b = _field_map(fa, texts), _field_map(fb, texts)
        out: list[tuple] = []
        for key, f in a.items():
            if key not in b:
                out.append(("field removed", key, f[0], None))
        for key, f in b.items():
            if key not in a:
                out.append(("field added", key, None, f[0]))
        for key, (tb, cb, ob, container) in b.items():
            if key not in a:
                continue
            ta, ca, oa, _ = a[key]
            how = self.meaning.change(ta, ca, tb, cb)
            if how:
                out.append((f"field {how}", key, _shown(ta, ca, tb, cb), _shown(tb, cb, ta, ca)))
            if oa != ob and not container:
                out.append(("field offset changed", key, _offset(oa), _offset(ob)))
        return out


def _pname(params: list[tuple], k: int) -> str:
    return params[k][0] or f"#{k}"


def _match_params(a: list[tuple], b: list[tuple]):
    """Match parameters (name, text, canon) of A and B: by name, then by
    position. Returns (pairs compared for type, unmatched in A, unmatched in
    B, renamed pairs); a position pair of two named parameters with different
    types is a removal plus an addition, not a rename."""
    index_a = _unique_names(a)
    index_b = _unique_names(b)
    pairs = [(index_a[n], index_b[n]) for n in index_a if n in index_b]
    used_a, used_b = {i for i, _ in pairs}, {j for _, j in pairs}
    renamed = []
    for i in range(min(len(a), len(b))):
        if i in used_a or i in used_b:
            continue
        (na, ta, ca), (nb, tb, cb) = a[i], b[i]
        if na is None or nb is None:
            pairs.append((i, i))
        elif (ca or ta) == (cb or tb):
            renamed.append((i, i))
        else:
            continue
        used_a.add(i)
        used_b.add(i)
    gone = [i for i in range(len(a)) if i not in used_a]
    new = [j for j in range(len(b)) if j not in used_b]
    return sorted(pairs), gone, new, renamed


def _unique_names(params: list[tuple]) -> dict[str, int]:
    seen: dict[str, int] = {}
    twice: set[str] = set()
    for k, (name, _, _) in enumerate(params):
        if name is None:
            continue
        if name in seen:
            twice.add(name)
        seen[name] = k
    return {n: k for n, k in seen.items() if n not in twice}


def _status(x: tuple, y: tuple, symtab: bool) -> list[tuple]:
    """Status changes (docs/concepts.md#function-status) between two function_states rows; facts one
    build does not know (NULL, or no symbol table) are not compared."""
    out: list[tuple] = []
    _, _, col_a, inl_a, suf_a, syms_a, _ = x
    _, _, col_b, inl_b, suf_b, syms_b, _ = y
    if inl_a != inl_b and inl_a is not None and inl_b is not None:
        kind = "declared only changed" if DECLARED_ONLY in (inl_a, inl_b) else "inline changed"
        out.append((kind, None, inl_a, inl_b))
    if symtab and suf_a != suf_b:
        if not suf_a:
            out.append(("became transformed", None, None, suf_b))
        elif not suf_b:
            out.append(("stopped being transformed", None, suf_a, None))
        else:
            out.append(("transformation changed", None, suf_a, suf_b))
    if col_a != col_b and col_a is not None and col_b is not None:
        out.append(("collision changed", None, col_a, col_b))
    if symtab and (syms_a > 0) != (syms_b > 0):
        out.append(("symbol lost" if syms_a else "symbol gained", None, str(syms_a), str(syms_b)))
    return out


def _field_map(fields: list[tuple], texts: dict[int, str]) -> dict[str, tuple]:
    """{key: (type text, canonical text, bit offset, is an anonymous container)}
    of one layout's flattened fields (see the module docstring for the keys)."""
    parents = {f[6] for f in fields if f[6] is not None}
    by_pos = {f[0]: f for f in fields}
    prefix: dict[int | None, str] = {None: ""}  # position -> prefix of its members' keys
    out: dict[str, tuple] = {}
    anonymous = 0
    for k, (pos, name, type_id, canon_id, bit_offset, bit_size, parent) in enumerate(fields):
        base = prefix.get(parent, "")
        container = pos in parents
        if name is not None:
            key = base + name
            prefix[pos] = key + "."
        elif container:
            prefix[pos] = base
            first = _first_named(fields, k, by_pos)
            if first is None:
                anonymous += 1
                key = f"{base}{{#{anonymous}}}"
            else:
                key = f"{base}{{{first}}}"
        else:
            continue  # unnamed padding bitfield
        text = texts[type_id]
        canon = texts.get(canon_id) if canon_id is not None else None
        if bit_size:
            text, canon = f"{text}:{bit_size}", (f"{canon}:{bit_size}" if canon else None)
        out.setdefault(key, (text, canon, bit_offset, container and name is None))
    return out


def _first_named(fields: list[tuple], k: int, by_pos: dict[int, tuple]) -> str | None:
    """The name of the first named member inside the anonymous container
    fields[k], relative to it ("a" or "x.a"); members follow their container."""
    container = fields[k][0]
    for f in fields[k + 1 :]:
        chain: list[str] = []
        p = f
        while p is not None and p[0] != container:
            if p[1] is not None:
                chain.append(p[1])
            p = by_pos.get(p[6]) if p[6] is not None else None
        if p is None:
            return None  # left the container's subtree: no named member
        if f[1] is not None:
            return ".".join(reversed(chain))
    return None


def _offset(bits: int) -> str:
    return str(bits // 8) if bits % 8 == 0 else f"{bits // 8}:{bits % 8}"


def _pair_layouts(ra: list[int], rb: list[int], fields: dict, values: dict):
    """Pair the remaining distinct layouts of one name in A and B: one each is
    a pair; several are paired greedily by the member names they share."""
    if len(ra) == 1 and len(rb) == 1:
        return [(ra[0], rb[0])], [], []

    def names(layout: int) -> set:
        return {f[1] for f in fields.get(layout, ())} | {v[0] for v in values.get(layout, ())}

    scored = sorted(
        ((len(names(x) & names(y)), -k, -m, x, y) for k, x in enumerate(ra) for m, y in enumerate(rb)),
        reverse=True,
    )
    pairs, used_a, used_b = [], set(), set()
    for score, _, _, x, y in scored:
        if score and x not in used_a and y not in used_b:
            pairs.append((x, y))
            used_a.add(x)
            used_b.add(y)
    return pairs, [x for x in ra if x not in used_a], [y for y in rb if y not in used_b]


def _enum_changes(va: list[tuple], vb: list[tuple]) -> list[tuple]:
    a, b = dict(va), dict(vb)
    out: list[tuple] = []
    for name, value in va:
        if name not in b:
            out.append(("value removed", name, str(value), None))
    for name, value in vb:
        if name not in a:
            out.append(("value added", name, None, str(value)))
        elif a[name] != value:
            out.append(("value changed", name, str(a[name]), str(value)))
    return out


# --------------------------------------------------------------------------- entry points


def _filters(kinds: Iterable[str] | None) -> tuple[set[str], set[str] | None]:
    """Item kinds to compute and change kinds to keep (None: all) from --kind values."""
    if not kinds:
        return set(ITEM_KINDS), None
    items, changes = set(), set()
    for k in kinds:
        if k in ITEM_KINDS:
            items.add(k)
        elif k == "type":
            items.update(TYPE_ITEMS)
        elif k in CHANGE_KINDS:
            changes.add(k)
        else:
            raise BadKind(
                f"unknown kind {k!r}: use an item kind ({', '.join(ITEM_KINDS)}, type) "
                f"or a change kind ({', '.join(CHANGE_KINDS)})"
            )
    return items or set(ITEM_KINDS), changes or None


def _matcher(pattern: str | None) -> Callable[[str], bool]:
    """Exact name, or a shell-style glob (`dma_buf*`, `*_ops`) when it has * ? or [."""
    if not pattern:
        return lambda name: True
    if not any(c in pattern for c in "*?["):
        return lambda name: name == pattern
    rx = re.compile(fnmatch.translate(pattern))
    return lambda name: rx.match(name) is not None


_ITEM_ORDER = {k: n for n, k in enumerate(ITEM_KINDS)}


def diff_builds(
    conn: sqlite3.Connection,
    build_a: str | int,
    build_b: str | int,
    kinds: Iterable[str] | None = None,
    name_pattern: str | None = None,
) -> list[Change]:
    """The changes from build A to build B (names, ids or build-id prefixes),
    ordered by item kind, then name. `kinds` limits them to item kinds
    (function, struct, union, enum; "type" = the last three) and/or change kinds;
    `name_pattern` to one name or a glob."""
    a, b = resolve_build(conn, build_a), resolve_build(conn, build_b)
    items, keep = _filters(kinds)
    pair = _Pair(conn, a, b, _matcher(name_pattern))
    out: list[Change] = []
    if "function" in items:
        out += pair.functions()
    if items & set(TYPE_ITEMS):
        out += pair.types_changes(items & set(TYPE_ITEMS))
    fa, fb = pair.facts
    for kind in SURFACE_ITEMS:
        known = (
            fa["has_config"] and fb["has_config"] if kind == "config" else fa["surfaces"] and fb["surfaces"]
        )
        if kind in items and known:
            out += [Change(*c) for c in SURFACE_DIFFS[kind](conn, a, b, pair.match)]
    if keep is not None:
        out = [c for c in out if c.change_kind in keep]
    out.sort(key=lambda c: (_ITEM_ORDER[c.item_kind], c.name))  # stable: keeps each item's own order
    return out


def _stamp(conn: sqlite3.Connection, a: int, b: int) -> str:
    return f"v{DIFF_VERSION} {db.build_facts(conn, a)['stamp']} {db.build_facts(conn, b)['stamp']}"


def store_pair(
    conn: sqlite3.Connection, build_a: str | int, build_b: str | int, changes: list[Change] | None = None
) -> int:
    """Store the (given or computed) changes of one pair; the pair keeps the
    group that defines it, if any, else it is ad hoc. Returns the pair id."""
    a, b = resolve_build(conn, build_a), resolve_build(conn, build_b)
    start = time.perf_counter()
    if changes is None:
        changes = diff_builds(conn, a, b)
    group = next((g for g, x, y in db.group_pairs(conn) if (x, y) == (a, b)), None)
    return db.store_diff(
        conn, a, b, group, [c.stored_row() for c in changes], _stamp(conn, a, b), time.perf_counter() - start
    )


def compute_group_diffs(conn: sqlite3.Connection) -> list[PairResult]:
    """Bring the stored differences in line with the groups: compute and store
    every pair a group defines whose rows are missing or stale (a build was
    re-ingested, or DIFF_VERSION changed), and drop group pairs no group
    defines any more. Ad-hoc pairs (`kernsurf diff --store`) are left alone.
    Idempotent: a second call finds everything current and writes nothing."""
    wanted = db.group_pairs(conn)
    stored = db.stored_pairs(conn)
    keys = {(a, b) for _, a, b in wanted}
    dropped = [pid for key, (pid, group, _, _) in stored.items() if group is not None and key not in keys]
    if dropped:
        db.delete_diff_pairs(conn, dropped)
    results: list[PairResult] = []
    for group, a, b in wanted:
        start = time.perf_counter()
        stamp = _stamp(conn, a, b)
        old = stored.get((a, b))
        if old is not None and old[2] == stamp:
            if old[1] != group:
                db.set_pair_group(conn, old[0], group)
            results.append(PairResult(group, a, b, False, old[3], time.perf_counter() - start))
            continue
        changes = diff_builds(conn, a, b)
        seconds = time.perf_counter() - start
        db.store_diff(conn, a, b, group, [c.stored_row() for c in changes], stamp, seconds)
        results.append(PairResult(group, a, b, True, len(changes), seconds))
    return results


# --------------------------------------------------------------------------- presentation


@dataclass(slots=True)
class Comparison:
    """The changes between two named builds, ready to print or serialise."""

    build_a: str
    build_b: str
    id_a: int
    id_b: int
    changes: list[Change]

    def as_dict(self) -> dict:
        return {
            "build_a": self.build_a,
            "build_b": self.build_b,
            "changes": [c.as_dict() for c in self.changes],
        }

    def text(self) -> str:
        """A readable table grouped by item: kind, detail, old → new."""
        items = {(c.item_kind, c.name) for c in self.changes}
        head = f"{self.build_a} → {self.build_b}: "
        if not self.changes:
            return head + "no changes"
        per_kind = defaultdict(int)
        for kind, _ in items:
            per_kind[kind] += 1
        counts = ", ".join(
            f"{per_kind[k]} {k}{'s' if per_kind[k] > 1 else ''}" for k in ITEM_KINDS if per_kind[k]
        )
        lines = [head + f"{len(self.changes)} changes in {len(items)} items ({counts})"]
        kind_w = max(len(c.change_kind) for c in self.changes)
        detail_w = min(24, max(len(c.detail or "") for c in self.changes))
        current = None
        for c in self.changes:
            if (c.item_kind, c.name) != current:
                current = (c.item_kind, c.name)
                lines += ["", f"{c.item_kind} {c.name}"]
            if c.old is not None and c.new is not None:
                values = f"{c.old} → {c.new}"
            else:
                values = f"+ {c.new}" if c.new is not None else f"- {c.old}" if c.old is not None else ""
            lines.append(f"  {c.change_kind:<{kind_w}}  {c.detail or '':<{detail_w}}  {values}".rstrip())
        return "\n".join(lines)


def compare(
    conn: sqlite3.Connection,
    build_a: str | int,
    build_b: str | int,
    kinds: Iterable[str] | None = None,
    name_pattern: str | None = None,
) -> Comparison:
    """diff_builds with the builds' names, for display (`kernsurf diff`)."""
    a, b = resolve_build(conn, build_a), resolve_build(conn, build_b)
    changes = diff_builds(conn, a, b, kinds, name_pattern)
    return Comparison(db.build_facts(conn, a)["name"], db.build_facts(conn, b)["name"], a, b, changes)
