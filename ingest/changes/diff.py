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

Modules (docs/concepts.md#modules), only when both builds' modules were read:
modules added/removed by name, and functions, structs/unions/enums,
tracepoints and kfuncs in both builds whose module (by name, vmlinux for none) differs:
"moved into module" / "moved into vmlinux" (a type lives in the modules its
layouts are stored with); from one module to another only when A's module is
known not to hold it on B (changes.surfaces.moved_changes). A build whose modules
were not read cannot see module items: they are not reported added or removed
against it.

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
from typing import NamedTuple

from ingest import db
from ingest.changes.surfaces import (
    SURFACE_DIFFS,
    SURFACE_ITEMS,
    absence_known,
    attach_changes,
    module_changes,
    module_paths,
    moved_changes,
    one_home,
)
from ingest.changes.typedefs import typedef_changes
from ingest.errors import BadKind, UnknownBuild
from ingest.queries import builds as builds_q
from ingest.queries import changes as changes_q
from ingest.queries import functions as functions_q
from ingest.queries import types as types_q
from ingest.queries.builds import BuildFacts
from ingest.queries.functions import FunctionState, ParamRow, PrototypeRow
from ingest.queries.types import EnumValue, FieldRow, TypeEntry

#: Bumped when the algorithm changes what it reports: stored pairs are recomputed.
DIFF_VERSION = 6

ITEM_KINDS = ("function", "struct", "union", "enum", "typedef", *SURFACE_ITEMS, "module")
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
    "typedef target changed",
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
    "moved into module",
    "moved into vmlinux",
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
        return db.ChangeRow(
            item_kind=self.item_kind,
            name=self.name,
            change_kind=self.change_kind,
            detail=self.detail,
            old=self.old,
            new=self.new,
        )

    def stored_row(self) -> db.ChangeRow:
        """row() as stored: the prototype of a function added or removed is
        left out (the build holds it; the change_list view joins it back)."""
        if self.item_kind == "function" and self.change_kind in ("added", "removed"):
            return self.row()._replace(old=None, new=None)
        return self.row()

    def as_dict(self) -> dict[str, str | None]:
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
    builds = [  # some databases hold the build-id as a blob
        b._replace(build_id=bytes(b.build_id).hex()) if isinstance(b.build_id, bytes) else b
        for b in builds_q.list_builds(conn)
    ]
    text = str(ref).strip()
    for b in builds:
        if b.name == text:
            return b.id
    if text.isdigit():
        for b in builds:
            if b.id == int(text):
                return b.id
    if len(text) >= 4 and re.fullmatch(r"[0-9a-fA-F]+", text):
        hits = [b for b in builds if b.build_id and str(b.build_id).lower().startswith(text.lower())]
        if len(hits) == 1:
            return hits[0].id
        if hits:
            raise UnknownBuild(
                f"build-id prefix {text!r} matches several builds: " + ", ".join(b.name for b in hits)
            )
    if not builds:
        raise UnknownBuild(
            f"no build {text!r}: the database holds no builds (add one with `kernsurf ingest`)"
        )
    listing = "; ".join(
        f"{b.name} (id {b.id}" + (f", build-id {str(b.build_id)[:12]})" if b.build_id else ")")
        for b in builds
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


#: (change_kind, detail, old, new): one change of an item, before it becomes a Change.
ItemChange = tuple[str, str | None, str | None, str | None]


class _Param(NamedTuple):
    """A parameter as compared: its name, type text and canonical type text."""

    name: str | None
    text: str
    canon: str | None


class _FieldFacts(NamedTuple):
    """A flattened field as compared (see _field_map)."""

    text: str
    canon: str | None
    bit_offset: int
    container: bool  # an anonymous container: its offset follows its members


class _Pair:
    """Everything one diff reads, loaded lazily and once."""

    def __init__(self, conn: sqlite3.Connection, a: int, b: int, match: Callable[[str], bool]):
        self.conn, self.match = conn, match
        self.facts = (_facts(conn, a), _facts(conn, b))
        #: Both builds' modules were read: only then are modules and moves compared.
        self.modules_read = (builds_q.modules_read(conn, a), builds_q.modules_read(conn, b))
        self._types: tuple[list[TypeEntry], list[TypeEntry]] | None = None
        self._paths_b: dict[str, str | None] | None = None
        self._tags: tuple[dict[tuple[str, str], tuple[int, ...]], ...] | None = None
        self.meaning = _Meaning(self.tag_layouts)

    def module_paths(self) -> dict[str, str | None] | None:
        """B's modules by name -> path (None: unreadable), or None unless both builds' were read."""
        if not all(self.modules_read):
            return None
        if self._paths_b is None:
            self._paths_b = module_paths(self.conn, self.facts[1].id)
        return self._paths_b

    def types(self) -> tuple[list[TypeEntry], list[TypeEntry]]:
        """type_entries of A and B (all names: tag renames look beyond the pattern)."""
        if self._types is None:
            self._types = (
                types_q.type_entries(self.conn, self.facts[0].id),
                types_q.type_entries(self.conn, self.facts[1].id),
            )
        return self._types

    def tag_layouts(self, side: int, kind: str, name: str) -> tuple[int, ...] | None:
        if self._tags is None:
            tags: tuple[defaultdict[tuple[str, str], list[int]], ...] = (defaultdict(list), defaultdict(list))
            for k, rows in enumerate(self.types()):
                for t in rows:
                    tags[k][(t.kind, t.name)].append(t.layout_id)
            self._tags = tuple({key: tuple(sorted(v)) for key, v in t.items()} for t in tags)
        return self._tags[side].get((kind, name))

    # ----------------------------------------------------------------- functions

    def functions(self) -> list[Change]:
        fa, fb = self.facts
        ra, rb = ({r.name_id: r for r in states if self.match(r.name)} for states in self._function_states())
        protos: set[int] = set()
        for nid, state in ra.items():
            other = rb.get(nid)
            if other is None or state.prototype_id != other.prototype_id:
                protos.update(p for p in (state.prototype_id, other and other.prototype_id) if p)
        protos.update(s.prototype_id for nid, s in rb.items() if nid not in ra and s.prototype_id)
        details, params = functions_q.prototype_details(self.conn, protos)
        ids = {t for d in details.values() for t in (d.return_type_id, d.canon_return_id)} | {
            t for ps in params.values() for p in ps for t in (p.type_id, p.canon_id)
        }
        texts = types_q.type_texts(self.conn, {t for t in ids if t is not None})

        def text(proto: int | None) -> str | None:
            return details[proto].text if proto else None

        out: list[Change] = []
        symtab = fa.has_symtab and fb.has_symtab
        paths_b = self.module_paths()
        for nid in sorted(ra.keys() | rb.keys()):
            x, y = ra.get(nid), rb.get(nid)
            if y is None:
                assert x is not None
                # a build without DWARF (BTF only) cannot see names that have no symbol;
                # one whose modules were not read cannot see module functions
                seen = fb.has_dwarf or not fa.has_dwarf or x.n_symbols > 0
                if seen and absence_known(x.module, self.modules_read[1]):
                    out.append(Change("function", x.name, "removed", old=text(x.prototype_id)))
                continue
            if x is None:
                seen = fa.has_dwarf or not fb.has_dwarf or y.n_symbols > 0
                if seen and absence_known(y.module, self.modules_read[0]):
                    out.append(Change("function", y.name, "added", new=text(y.prototype_id)))
                continue
            name, pa, pb = x.name, x.prototype_id, y.prototype_id
            if pa != pb:
                if pa is None:
                    out.append(Change("function", name, "prototype added", new=text(pb)))
                elif pb is None:
                    out.append(Change("function", name, "prototype removed", old=text(pa)))
                else:
                    out.extend(
                        Change("function", name, *c)
                        for c in self.prototype(details[pa], params[pa], details[pb], params[pb], texts)
                    )
            out.extend(Change("function", name, *c) for c in _status(x, y, symtab))
            if paths_b is not None:
                moved = moved_changes("function", name, one_home(x.module), one_home(y.module), paths_b)
                out.extend(Change(*c) for c in moved)
        if fa.surfaces and fb.surfaces:
            names = {nid: r.name for nid, r in ra.items()}
            out.extend(Change(*c) for c in attach_changes(self.conn, fa.id, fb.id, names, self.match))
        return out

    def _function_states(self) -> tuple[list[FunctionState], list[FunctionState]]:
        """Both builds' function rows; when the builds agree on everything a
        function's attachability also depends on, only the names whose function
        fact differs (a name with the same fact in both has no change)."""
        fa, fb = self.facts
        if (fa.has_dwarf, fa.has_btf, fa.has_symtab, fa.surfaces) != (
            fb.has_dwarf,
            fb.has_btf,
            fb.has_symtab,
            fb.surfaces,
        ):
            return functions_q.function_states(self.conn, fa.id), functions_q.function_states(
                self.conn, fb.id
            )
        only_a = functions_q.function_states_not_in(self.conn, fa.id, fb.id)
        only_b = functions_q.function_states_not_in(self.conn, fb.id, fa.id)
        names = {r.name_id for r in only_a} | {r.name_id for r in only_b}
        # a name whose fact changed is in both lists; one only in a list has its other side's row unchanged
        rest_a = functions_q.function_states_of(self.conn, fa.id, names - {r.name_id for r in only_a})
        rest_b = functions_q.function_states_of(self.conn, fb.id, names - {r.name_id for r in only_b})
        return only_a + rest_a, only_b + rest_b

    def prototype(
        self,
        pa: PrototypeRow,
        params_a: list[ParamRow],
        pb: PrototypeRow,
        params_b: list[ParamRow],
        texts: dict[int, str],
    ) -> list[ItemChange]:
        """(change_kind, detail, old, new) between two prototypes."""
        out: list[ItemChange] = []

        def side(proto: PrototypeRow, params: list[ParamRow]) -> list[_Param]:
            got = [
                _Param(p.name, texts[p.type_id], texts.get(p.canon_id) if p.canon_id is not None else None)
                for p in params
            ]
            if proto.variadic:
                got.append(_Param("...", "...", "..."))
            return got

        a, b = side(pa, params_a), side(pb, params_b)
        pairs, gone, new, renamed = _match_params(a, b)
        for i in gone:
            out.append(("param removed", _pname(a, i), a[i].text, None))
        for j in new:
            out.append(("param added", _pname(b, j), None, b[j].text))
        for i, j in renamed:
            out.append(("param renamed", f"#{j}", a[i].name, b[j].name))
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
        ra, rb = texts[pa.return_type_id], texts[pb.return_type_id]
        ca = texts.get(pa.canon_return_id) if pa.canon_return_id is not None else None
        cb = texts.get(pb.canon_return_id) if pb.canon_return_id is not None else None
        how = self.meaning.change(ra, ca, rb, cb)
        if how:
            out.append((f"return {how}", None, _shown(ra, ca, rb, cb), _shown(rb, cb, ra, ca)))
        return out

    # ----------------------------------------------------------------- structs, unions, enums

    def types_changes(self, items: set[str]) -> list[Change]:
        sides: tuple[defaultdict[tuple[str, str], list[int]], ...] = (defaultdict(list), defaultdict(list))
        #: (kind, name, layout) -> the module it is stored with (None: vmlinux), per side
        homes: tuple[dict[tuple[str, str, int], str | None], ...] = ({}, {})
        fa, fb = self.facts
        for k, rows in enumerate(types_q.type_entries_differing(self.conn, fa.id, fb.id)):
            for t in rows:
                if t.kind in items and self.match(t.name):
                    sides[k][(t.kind, t.name)].append(t.layout_id)
                    homes[k][(t.kind, t.name, t.layout_id)] = t.module
        ea, eb = ({key: sorted(v) for key, v in side.items()} for side in sides)
        read_a, read_b = self.modules_read
        differing = [key for key in ea.keys() | eb.keys() if ea.get(key) != eb.get(key)]
        need = {layout for key in differing for layout in ea.get(key, []) + eb.get(key, [])}
        sizes, fields, values = types_q.layout_details(self.conn, need)
        texts = types_q.type_texts(
            self.conn,
            {t for fs in fields.values() for f in fs for t in (f.type_id, f.canon_id) if t is not None},
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
                if absence_known(homes[0][(kind, name, x)], read_b):
                    out.append(Change(kind, name, "removed", many_a, str(sizes[x]), None))
            for y in left_b:
                if absence_known(homes[1][(kind, name, y)], read_a):
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
        paths_b = self.module_paths()
        if paths_b is not None:
            for key in sorted(ea.keys() & eb.keys(), key=lambda k: (k[1], k[0])):
                wa, wb = _type_home(homes[0], key, ea[key]), _type_home(homes[1], key, eb[key])
                out.extend(Change(*c) for c in moved_changes(*key, wa, wb, paths_b))
        return out

    def field_changes(
        self, fa: list[FieldRow], fb: list[FieldRow], texts: dict[int, str]
    ) -> list[ItemChange]:
        a, b = _field_map(fa, texts), _field_map(fb, texts)
        out: list[ItemChange] = []
        for key, f in a.items():
            if key not in b:
                out.append(("field removed", key, f.text, None))
        for key, f in b.items():
            if key not in a:
                out.append(("field added", key, None, f.text))
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


def _type_home(
    homes: dict[tuple[str, str, int], str | None], key: tuple[str, str], layouts: list[int]
) -> frozenset[str]:
    """The modules a type (kind, name) lives in on one side; empty: vmlinux (which
    has the name then, and all its layouts are stored with vmlinux)."""
    where = {homes[(*key, layout)] for layout in layouts}
    return frozenset() if None in where else frozenset(m for m in where if m is not None)


def _facts(conn: sqlite3.Connection, build: int) -> BuildFacts:
    facts = builds_q.build_facts(conn, build)
    if facts is None:
        raise UnknownBuild(f"no build with id {build}")
    return facts


def _pname(params: list[_Param], k: int) -> str:
    return params[k].name or f"#{k}"


def _match_params(
    a: list[_Param], b: list[_Param]
) -> tuple[list[tuple[int, int]], list[int], list[int], list[tuple[int, int]]]:
    """Match parameters of A and B: by name, then by position. Returns (pairs
    compared for type, unmatched in A, unmatched in B, renamed pairs); a
    position pair of two named parameters with different types is a removal
    plus an addition, not a rename."""
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


def _unique_names(params: list[_Param]) -> dict[str, int]:
    seen: dict[str, int] = {}
    twice: set[str] = set()
    for k, p in enumerate(params):
        if p.name is None:
            continue
        if p.name in seen:
            twice.add(p.name)
        seen[p.name] = k
    return {n: k for n, k in seen.items() if n not in twice}


def _status(x: FunctionState, y: FunctionState, symtab: bool) -> list[ItemChange]:
    """Status changes (docs/concepts.md#function-status) between two function states; facts one
    build does not know (NULL, or no symbol table) are not compared."""
    out: list[ItemChange] = []
    if x.inline != y.inline and x.inline is not None and y.inline is not None:
        kind = "declared only changed" if DECLARED_ONLY in (x.inline, y.inline) else "inline changed"
        out.append((kind, None, x.inline, y.inline))
    if symtab and x.suffixes != y.suffixes:
        if not x.suffixes:
            out.append(("became transformed", None, None, y.suffixes))
        elif not y.suffixes:
            out.append(("stopped being transformed", None, x.suffixes, None))
        else:
            out.append(("transformation changed", None, x.suffixes, y.suffixes))
    if x.collision != y.collision and x.collision is not None and y.collision is not None:
        out.append(("collision changed", None, x.collision, y.collision))
    if symtab and (x.n_symbols > 0) != (y.n_symbols > 0):
        kind = "symbol lost" if x.n_symbols else "symbol gained"
        out.append((kind, None, str(x.n_symbols), str(y.n_symbols)))
    return out


def _field_map(fields: list[FieldRow], texts: dict[int, str]) -> dict[str, _FieldFacts]:
    """The flattened fields of one layout by key (see the module docstring for the keys)."""
    parents = {f.parent for f in fields if f.parent is not None}
    by_pos = {f.position: f for f in fields}
    prefix: dict[int | None, str] = {None: ""}  # position -> prefix of its members' keys
    out: dict[str, _FieldFacts] = {}
    anonymous = 0
    for k, f in enumerate(fields):
        base = prefix.get(f.parent, "")
        container = f.position in parents
        if f.name is not None:
            key = base + f.name
            prefix[f.position] = key + "."
        elif container:
            prefix[f.position] = base
            first = _first_named(fields, k, by_pos)
            if first is None:
                anonymous += 1
                key = f"{base}{{#{anonymous}}}"
            else:
                key = f"{base}{{{first}}}"
        else:
            continue  # unnamed padding bitfield
        text = texts[f.type_id]
        canon = texts.get(f.canon_id) if f.canon_id is not None else None
        if f.bit_size:
            text, canon = f"{text}:{f.bit_size}", (f"{canon}:{f.bit_size}" if canon else None)
        out.setdefault(key, _FieldFacts(text, canon, f.bit_offset, container and f.name is None))
    return out


def _first_named(fields: list[FieldRow], k: int, by_pos: dict[int, FieldRow]) -> str | None:
    """The name of the first named member inside the anonymous container
    fields[k], relative to it ("a" or "x.a"); members follow their container."""
    container = fields[k].position
    for f in fields[k + 1 :]:
        chain: list[str] = []
        p: FieldRow | None = f
        while p is not None and p.position != container:
            if p.name is not None:
                chain.append(p.name)
            p = by_pos.get(p.parent) if p.parent is not None else None
        if p is None:
            return None  # left the container's subtree: no named member
        if f.name is not None:
            return ".".join(reversed(chain))
    return None


def _offset(bits: int) -> str:
    return str(bits // 8) if bits % 8 == 0 else f"{bits // 8}:{bits % 8}"


def _pair_layouts(
    ra: list[int], rb: list[int], fields: dict[int, list[FieldRow]], values: dict[int, list[EnumValue]]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair the remaining distinct layouts of one name in A and B: one each is
    a pair; several are paired greedily by the member names they share."""
    if len(ra) == 1 and len(rb) == 1:
        return [(ra[0], rb[0])], [], []

    def names(layout: int) -> set[str | None]:
        return {f.name for f in fields.get(layout, ())} | {v.name for v in values.get(layout, ())}

    scored = sorted(
        ((len(names(x) & names(y)), -k, -m, x, y) for k, x in enumerate(ra) for m, y in enumerate(rb)),
        reverse=True,
    )
    pairs: list[tuple[int, int]] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for score, _, _, x, y in scored:
        if score and x not in used_a and y not in used_b:
            pairs.append((x, y))
            used_a.add(x)
            used_b.add(y)
    return pairs, [x for x in ra if x not in used_a], [y for y in rb if y not in used_b]


def _enum_changes(va: list[EnumValue], vb: list[EnumValue]) -> list[ItemChange]:
    a, b = dict(va), dict(vb)
    out: list[ItemChange] = []
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
            items.update((*TYPE_ITEMS, "typedef"))
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
    if "typedef" in items:
        out += [Change(*c) for c in typedef_changes(conn, a, b, pair.match)]
    fa, fb = pair.facts
    for kind in SURFACE_ITEMS:
        known = fa.has_config and fb.has_config if kind == "config" else fa.surfaces and fb.surfaces
        if kind in items and known:
            out += [Change(*c) for c in SURFACE_DIFFS[kind](conn, a, b, pair.match)]
    if "module" in items and all(pair.modules_read):
        out += [Change(*c) for c in module_changes(conn, a, b, pair.match)]
    if keep is not None:
        out = [c for c in out if c.change_kind in keep]
    out.sort(key=lambda c: (_ITEM_ORDER[c.item_kind], c.name))  # stable: keeps each item's own order
    return out


def _stamp(conn: sqlite3.Connection, a: int, b: int) -> str:
    return f"v{DIFF_VERSION} {_facts(conn, a).stamp} {_facts(conn, b).stamp}"


def store_pair(
    conn: sqlite3.Connection, build_a: str | int, build_b: str | int, changes: list[Change] | None = None
) -> int:
    """Store the (given or computed) changes of one pair; the pair keeps the
    group that defines it, if any, else it is ad hoc. Returns the pair id."""
    a, b = resolve_build(conn, build_a), resolve_build(conn, build_b)
    start = time.perf_counter()
    if changes is None:
        changes = diff_builds(conn, a, b)
    group = next((p.group_id for p in changes_q.group_pairs(conn) if (p.build_a, p.build_b) == (a, b)), None)
    return db.store_diff(
        conn, a, b, group, [c.stored_row() for c in changes], _stamp(conn, a, b), time.perf_counter() - start
    )


def compute_group_diffs(conn: sqlite3.Connection) -> list[PairResult]:
    """Bring the stored differences in line with the groups: compute and store
    every pair a group defines whose rows are missing or stale (a build was
    re-ingested, or DIFF_VERSION changed), and drop group pairs no group
    defines any more. Ad-hoc pairs (`kernsurf diff --store`) are left alone.
    Idempotent: a second call finds everything current and writes nothing."""
    wanted = changes_q.group_pairs(conn)
    have = changes_q.stored_pairs(conn)
    keys = {(p.build_a, p.build_b) for p in wanted}
    dropped = [old.id for key, old in have.items() if old.group_id is not None and key not in keys]
    if dropped:
        db.delete_diff_pairs(conn, dropped)
    results: list[PairResult] = []
    for group, a, b in wanted:
        start = time.perf_counter()
        stamp = _stamp(conn, a, b)
        old = have.get((a, b))
        if old is not None and old.stamp == stamp:
            if old.group_id != group:
                db.set_pair_group(conn, old.id, group)
            results.append(PairResult(group, a, b, False, old.n_changes, time.perf_counter() - start))
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
        per_kind: defaultdict[str, int] = defaultdict(int)
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
    return Comparison(_facts(conn, a).name, _facts(conn, b).name, a, b, changes)
