"""The fast DWARF walk: function instances, call/inline edges, prototypes and
(when the image has no BTF) struct layouts.

pyelftools provides the ELF sections, the unit headers and line tables; the
DIEs themselves are decoded by generated per-abbreviation decoders
(dwarf_forms.py) in a flat loop that jumps over uninteresting subtrees with
DW_AT_sibling. Units are independent, so they are spread over processes.

All DIE references are absolute .debug_info offsets, so results from
different units and processes merge without translation (see ingest/vmlinux/units.py).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from multiprocessing.pool import Pool
from typing import Any, Literal, NamedTuple

from elftools.dwarf.dwarfinfo import DWARFInfo

from ingest.model import CType, Layout, Member, Prototype, Typedef
from ingest.readers import dwarf_lines
from ingest.readers.dwarf_forms import (
    _BLOCK_ATTRS,
    _BLOCK_FORMS,
    _STRING_ATTRS,
    _STRING_FORMS,
    CATEGORIES,
    FLOAT_ENCODINGS,
    BadDwarf,
    FORM_implicit_const,
    TAG_array_type,
    TAG_atomic_type,
    TAG_base_type,
    TAG_const_type,
    TAG_enumeration_type,
    TAG_inlined_subroutine,
    TAG_lexical_block,
    TAG_pointer_type,
    TAG_restrict_type,
    TAG_structure_type,
    TAG_subprogram,
    TAG_subrange_type,
    TAG_subroutine_type,
    TAG_typedef,
    TAG_union_type,
    TAG_volatile_type,
    UnitShape,
    decoder,
    walk_category,
)
from ingest.types import cdecl

LANG_RUST = 0x1C


@dataclass(slots=True)
class Unit:
    """One compile unit's header as the walker needs it."""

    offset: int  # unit header offset in .debug_info
    die_offset: int  # first DIE
    end: int  # one past the unit
    abbrev_offset: int
    shape: UnitShape


class Sub(NamedTuple):
    """One DW_TAG_subprogram DIE: a definition, declaration, abstract or concrete copy."""

    die: int  # .debug_info offset
    name: str | None  # None for copies that name their function through `origin`
    external: bool
    decl_file: str | None  # as the line table spells it (vmlinux.units normalises it)
    decl_line: int | None
    inline: int | None  # DW_AT_inline
    low_pc: int | None
    declaration: bool
    origin: int | None  # DW_AT_abstract_origin or DW_AT_specification
    concrete: bool  # has code: low_pc or ranges


class Edge(NamedTuple):
    """A call site or inlined copy of `callee` inside the concrete function `caller` (both DIEs)."""

    callee: int
    caller: int
    kind: str  # "direct" or "inline"
    address: int | None  # of an inlined copy


class UnitPrototype(NamedTuple):
    prototype: Prototype
    from_declaration: bool  # printed from a declaration: a definition elsewhere wins


class Abbrev(NamedTuple):
    """One abbreviation: what its DIEs are and how to decode them."""

    tag: int
    children: bool
    decode: Callable[..., tuple[int, tuple[Any, ...]]]  # dwarf_forms.decoder
    category: str  # dwarf_forms.category


_tuple_new = tuple.__new__  # builds a NamedTuple in C, without its Python-level __new__


@dataclass(slots=True)
class UnitFacts:
    """What one unit contributes. Records are NamedTuples: they pickle to the
    main process (nearly) as cheaply as tuples."""

    name: str | None
    comp_dir: str | None
    producer: str | None
    language: int | None
    subs: list[Sub] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    prototypes: dict[str, UnitPrototype] = field(default_factory=dict)
    layouts: list[Layout] = field(default_factory=list)
    typedefs: list[Typedef] = field(default_factory=list)  # with layouts (no BTF)


def units(dwarf: DWARFInfo, endian: str) -> list[Unit]:
    """Unit headers, via pyelftools."""
    out: list[Unit] = []
    for cu in dwarf.iter_CUs():
        h = cu.header
        if h.get("unit_type") not in (None, "DW_UT_compile", "DW_UT_partial"):
            continue
        shape = UnitShape(endian, cu.structs.dwarf_format // 8, h["address_size"], h["version"])
        out.append(
            Unit(cu.cu_offset, cu.cu_die_offset, cu.cu_offset + cu.size, h["debug_abbrev_offset"], shape)
        )
    return out


def units_from_bytes(info: bytes, endian: str) -> list[Unit]:
    """Unit headers read straight from .debug_info bytes (a module's, relocated:
    pyelftools' own ET_REL relocation is far too slow); the same list as units()."""
    e: Literal["little", "big"] = "big" if endian == "big" else "little"
    out: list[Unit] = []
    p = 0
    while p + 11 <= len(info):
        length, offset_size, q = int.from_bytes(info[p : p + 4], e), 4, p + 4
        if length == 0xFFFFFFFF:
            length, offset_size, q = int.from_bytes(info[q : q + 8], e), 8, q + 8
        end = q + length
        if length < 7 or end > len(info):
            raise BadDwarf(f"unit at 0x{p:x} runs past .debug_info (length 0x{length:x})")
        version = int.from_bytes(info[q : q + 2], e)
        if version >= 5:
            unit_type, address_size = info[q + 2], info[q + 3]
            abbrev = int.from_bytes(info[q + 4 : q + 4 + offset_size], e)
            # skeleton / split units carry a dwo_id; type units a signature and an offset
            die = q + 4 + offset_size + {4: 8, 5: 8, 2: 8 + offset_size, 6: 8 + offset_size}.get(unit_type, 0)
        else:
            unit_type = 1
            abbrev = int.from_bytes(info[q + 2 : q + 2 + offset_size], e)
            address_size = info[q + 2 + offset_size]
            die = q + 3 + offset_size
        if unit_type in (1, 3):  # DW_UT_compile, DW_UT_partial
            out.append(Unit(p, die, end, abbrev, UnitShape(endian, offset_size, address_size, version)))
        p = end
    return out


def parse_abbrevs(data: bytes, offset: int, shape: UnitShape, want_types: bool = True) -> dict[int, Abbrev]:
    """code -> abbreviation, for the table at `offset`; without `want_types`,
    type DIEs are skipped whole (WalkConfig.want_types)."""
    table: dict[int, Abbrev] = {}
    p = offset
    n = len(data)

    def uleb() -> int:
        nonlocal p
        v = s = 0
        while True:
            b = data[p]
            p += 1
            v |= (b & 0x7F) << s
            s += 7
            if b < 0x80:
                return v

    try:
        while p < n:
            code = uleb()
            if code == 0:
                break
            tag = uleb()
            children = data[p] != 0
            p += 1
            specs = []
            while True:
                attr, form = uleb(), uleb()
                if attr == 0 and form == 0:
                    break
                implicit = None
                if form == FORM_implicit_const:
                    implicit = uleb()
                    if implicit & (1 << 63):
                        implicit -= 1 << 64
                specs.append((attr, form, implicit))
            cat = walk_category(tag, want_types)
            table[code] = Abbrev(tag, children, decoder(tag, tuple(specs), shape, cat), cat)
    except IndexError:
        raise BadDwarf(f"abbreviation table at 0x{offset:x} runs past .debug_abbrev") from None
    return table


def _cstring(table: bytes, off: int, cache: dict[int, str], section: str) -> str:
    """The NUL-terminated string at `off` of a string section, remembered in `cache`."""
    end = table.find(b"\0", off)
    if end < 0 or off >= len(table):
        raise BadDwarf(f"string offset 0x{off:x} outside {section}")
    s = cache[off] = table[off:end].decode("utf-8", "replace")
    return s


class Strings:
    """String and address lookups for the decoders, cached per process."""

    def __init__(
        self, debug_str: bytes, line_str: bytes, str_offsets: bytes, addr: bytes, endian: str
    ) -> None:
        self.debug_str, self.line_str = debug_str, line_str
        self.str_offsets, self.addr = str_offsets, addr
        self.endian: Literal["little", "big"] = "big" if endian == "big" else "little"
        self._cache: dict[int, str] = {}
        self._line_cache: dict[int, str] = {}
        self.str_base = 8
        self.addr_base = 8
        self.offset_size = 4
        self.address_size = 8

    def strp(self, off: int) -> str:
        s = self._cache.get(off)
        return s if s is not None else _cstring(self.debug_str, off, self._cache, ".debug_str")

    def line_strp(self, off: int) -> str:
        s = self._line_cache.get(off)
        return s if s is not None else _cstring(self.line_str, off, self._line_cache, ".debug_line_str")

    def strx(self, index: int) -> str:
        at = self.str_base + index * self.offset_size
        return self.strp(int.from_bytes(self.str_offsets[at : at + self.offset_size], self.endian))

    def addrx(self, index: int) -> int:
        at = self.addr_base + index * self.address_size
        return int.from_bytes(self.addr[at : at + self.address_size], self.endian)


# Tags whose children the walker visits even when the DIE has a sibling link.
_DESCEND_ALWAYS = {
    TAG_subprogram,
    TAG_lexical_block,
    TAG_inlined_subroutine,
    TAG_array_type,
    TAG_subroutine_type,
}
_DESCEND_LAYOUT = {TAG_structure_type, TAG_union_type, TAG_enumeration_type}
_QUALIFIERS = {
    TAG_const_type: "const",
    TAG_volatile_type: "volatile",
    TAG_restrict_type: "restrict",
    TAG_atomic_type: "atomic",
}
_AGGREGATE_KINDS = {TAG_structure_type: "struct", TAG_union_type: "union", TAG_enumeration_type: "enum"}


class _Graph(dict[int, CType]):
    """A unit's type graph, converted from raw DIE tuples on first access.

    Raw entries are [tag, name, type, byte_size, encoding, count, declaration,
    children]; children are members, enumerators, subrange counts or params.
    """

    def __init__(self, raw: dict[int, list[Any]], pointer_size: int) -> None:
        super().__init__()
        self[0] = CType("void")
        self.raw, self.pointer_size = raw, pointer_size

    def __missing__(self, off: int) -> CType:
        r = self.raw.get(off)
        if r is None:
            raise KeyError(off)
        tag, name, ref, size, enc, count, decl, kids = r
        ref = ref or 0
        if tag == TAG_base_type:
            t = CType("float" if enc in FLOAT_ENCODINGS else "int", name, size=size)
        elif tag == TAG_pointer_type:
            t = CType("ptr", ref=ref, size=size or self.pointer_size)
        elif tag in _QUALIFIERS:
            t = CType(_QUALIFIERS[tag], ref=ref)
        elif tag == TAG_typedef:
            t = CType("typedef", name, ref=ref)
        elif tag in _AGGREGATE_KINDS:
            kind = _AGGREGATE_KINDS[tag]
            if decl:
                t = CType("fwd", name, fwd_kind=kind)
            elif kind == "enum":
                t = CType("enum", name, size=size, enumerators=kids)
            else:
                t = CType(kind, name, size=size, members=kids)
        elif tag == TAG_array_type:
            # int a[2][3] is one DIE with two subranges: the first is outermost.
            dims = kids or [None]
            for k, n in enumerate(reversed(dims[1:])):
                inner = off + ((k + 1) << 48)  # synthetic id, beyond any DIE offset
                self[inner] = CType("array", ref=ref, count=n)
                ref = inner
            t = CType("array", ref=ref, count=dims[0])
        elif tag == TAG_subroutine_type:
            variadic = bool(kids) and kids[-1] is None
            t = CType("func", ref=ref, params=[k for k in kids if k is not None], variadic=variadic)
        else:
            t = CType("void")
        self[off] = t
        return t


@dataclass(slots=True)
class WalkConfig:
    """What the walk must produce for this image."""

    btf_funcs: frozenset[str]  # names whose prototype comes from BTF
    want_layouts: bool  # no BTF: struct layouts come from DWARF
    # False: skip type DIEs whole (no DWARF prototypes either).
    want_types: bool = True
    # A module's: names vmlinux gives a prototype (the join chooses vmlinux's first).
    prototyped: frozenset[str] = frozenset()


def walk_unit(
    info: bytes,
    unit: Unit,
    abbrevs: dict[int, Abbrev],
    strings: Strings,
    files: Callable[[int, str | None], list[str]],
    config: WalkConfig,
    seen: set[object],
) -> UnitFacts:
    """Decode one unit. `files(stmt_list, comp_dir)` gives its line-table file names;
    `seen` (per process) holds prototype names and layout keys already produced."""
    strings.offset_size = unit.shape.offset_size
    strings.address_size = unit.shape.address_size
    w = _UnitWalk(unit, strings, files, config.want_layouts)
    _walk_dies(w, info, abbrevs)
    if w.facts is None:
        raise BadDwarf(f"unit at 0x{unit.offset:x} has no compile-unit DIE")
    if w.file_names is None:  # a Rust unit: its facts alone
        return w.facts
    return _finish(
        w.facts, w.file_names, w.subs, w.edges, w.sub_info, w.params, w.raw_types, unit, config, seen
    )


def _walk_dies(w: _UnitWalk, d: bytes, abbrevs: dict[int, Abbrev]) -> None:
    """The flat loop over a unit's DIEs: decode each, skip the uninteresting ones
    (by DW_AT_sibling when they have children), hand the others to their tag's
    method of `w` (which may jump over the children), keep the stack of open parents."""
    unit = w.unit
    p, end, cu = unit.die_offset, unit.end, unit.offset
    strings = w.strings
    strp, line_strp, strx, addrx = strings.strp, strings.line_strp, strings.strx, strings.addrx
    on_tag = w.handlers()
    stack = w.stack
    while p < end:
        die = p
        code = d[p]
        p += 1
        if code >= 0x80:
            code &= 0x7F
            s = 7
            while True:
                b = d[p]
                p += 1
                code |= (b & 0x7F) << s
                s += 7
                if b < 0x80:
                    break
        if code == 0:
            if not stack:
                break  # padding after the unit DIE's children
            stack.pop()
            if len(stack) == w.top_depth:
                w.top, w.top_depth, w.abstract = -1, -1, False
            continue
        try:
            tag, children, dec, cat = abbrevs[code]
        except KeyError:
            raise BadDwarf(f"unknown abbreviation code {code} at 0x{die:x}") from None
        p, v = dec(d, p, cu, strp, line_strp, strx, addrx)
        descend = children
        if cat == "skip":  # the most frequent case: variables, labels, lexical blocks, ...
            if children and tag != TAG_lexical_block:
                (sibling,) = v
                if sibling is not None:
                    p, descend = sibling, False
        elif (jump := on_tag[cat](tag, die, children, v)) is not None:
            p, descend = jump, False
        if p <= die:  # a DW_AT_sibling pointing back would loop forever
            raise BadDwarf(f"DW_AT_sibling of the DIE at 0x{die:x} points backwards (0x{p:x})")
        if descend:
            stack.append((tag, die))


class _UnitWalk:
    """What the walk of one unit gathers, and one method per DIE tag family,
    named as the C walk's functions (_dwarfwalk.c: on_subprogram, ...).

    Each method takes (tag, die offset, has children, decoded values) and
    returns where the walk goes on: None for the next DIE, or the DIE's sibling
    (its children skipped)."""

    __slots__ = (
        "unit", "strings", "files", "want_layouts", "facts", "file_names", "subs", "edges", "params",
        "sub_info", "raw_types", "stack", "top", "top_depth", "abstract",
    )  # fmt: skip

    def __init__(
        self, unit: Unit, strings: Strings, files: Callable[[int, str | None], list[str]], want_layouts: bool
    ) -> None:
        self.unit, self.strings, self.files, self.want_layouts = unit, strings, files, want_layouts
        self.facts: UnitFacts | None = None
        self.file_names: list[str] | None = []  # None: a Rust unit
        self.subs: list[tuple[Any, ...]] = []  # Sub fields, decl_file still a line-table index
        self.edges: list[tuple[int, int, str, int | None]] = []
        # root subprogram die -> params (None: ...), and -> (name, return type, is a declaration)
        self.params: dict[int, list[tuple[str | None, int] | None]] = {}
        self.sub_info: dict[int, tuple[str, int, bool]] = {}
        self.raw_types: dict[int, list[Any]] = {}  # see _Graph
        self.stack: list[tuple[int, int]] = []  # (tag, die offset) of open parents
        self.top = -1  # outermost concrete subprogram (or abstract instance), -1 outside one
        self.top_depth = -1
        self.abstract = False  # top is an abstract instance (DW_AT_inline): only its call sites count

    def handlers(self) -> dict[str, Callable[[int, int, bool, tuple[Any, ...]], int | None]]:
        """Decoder category (dwarf_forms.CATEGORIES) -> the method for its DIEs."""
        return {
            "cu": self.on_cu,
            "sub": self.on_subprogram,
            "param": self.on_formal_parameter,
            "unspecified": self.on_unspecified,
            "inl": self.on_inlined_subroutine,
            "call": self.on_call,
            "type": self.on_type,
            "member": self.on_member,
            "enumerator": self.on_enumerator,
        }

    def on_cu(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """The unit DIE (a second one is ignored): the unit's facts, its string and
        address bases, its file names; a Rust unit ends the walk."""
        if self.facts is not None:
            return None
        name, comp_dir, producer, language, stmt_list, str_base, addr_base = v
        if str_base is not None:
            self.strings.str_base = str_base
        if addr_base is not None:
            self.strings.addr_base = addr_base
        self.facts, self.file_names = _unit_facts(name, comp_dir, producer, language, stmt_list, self.files)
        return self.unit.end if self.file_names is None else None

    def on_subprogram(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """A Sub; a named root one gets a prototype; the outermost concrete (or
        abstract) one is the caller of the call sites and inlined copies inside."""
        (name, external, decl_file, decl_line, inline, low_pc, declaration, origin, spec, rtype, _, ranges, _, prototyped) = v  # fmt: skip
        concrete = low_pc is not None or ranges is not None
        origin = origin or spec
        self.subs.append(
            (
                die,
                name,
                bool(external),
                decl_file,
                decl_line,
                inline,
                low_pc,
                bool(declaration),
                origin,
                concrete,
            )
        )
        if origin is None and name is not None and (prototyped or not declaration):
            self.params[die] = []
            self.sub_info[die] = (name, rtype or 0, bool(declaration))
        if children and self.top < 0 and (concrete or inline is not None):
            # A call site GCC files under the abstract instance is a call
            # that function makes (docs/concepts.md#callers).
            self.top, self.top_depth, self.abstract = die, len(self.stack), not concrete
        return None

    def on_formal_parameter(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """A parameter of the root subprogram or subroutine type it is in."""
        if self.stack:
            ptag, poff = self.stack[-1]
            pname, ptype, _ = v
            if ptag == TAG_subprogram:
                lst = self.params.get(poff)
                if lst is not None:
                    lst.append((pname, ptype or 0))
            elif ptag == TAG_subroutine_type:
                self.raw_types[poff][7].append((None, ptype or 0))
        return None

    def on_unspecified(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """`...`: the subprogram or subroutine type it is in is variadic."""
        if self.stack:
            ptag, poff = self.stack[-1]
            if ptag == TAG_subprogram and poff in self.params:
                self.params[poff].append(None)
            elif ptag == TAG_subroutine_type:
                self.raw_types[poff][7].append(None)
        return None

    def on_inlined_subroutine(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """An inlined copy: an "inline" edge from the concrete function it is in."""
        origin, low_pc, entry_pc, _ = v
        if self.top >= 0 and origin is not None and not self.abstract:
            self.edges.append((origin, self.top, "inline", low_pc if low_pc is not None else entry_pc))
        return None

    def on_call(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """A call site (DWARF 5 or GNU): a "direct" edge; its children are skipped."""
        call_origin, origin, sibling = v
        if call_origin is not None:
            origin = call_origin
        if self.top >= 0 and origin is not None:
            self.edges.append((origin, self.top, "direct", None))
        return sibling if children else None

    def on_type(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """A type DIE, kept raw (see _Graph). Its children are visited only where they
        describe it (array dimensions, parameters, and with layouts members and enumerators)."""
        if tag == TAG_subrange_type:
            self.on_subrange_type(v)
            return None
        name, ref, size, enc, count, _, sibling, decl = v
        self.raw_types[die] = [tag, name, ref, size, enc, count, decl, []]
        if children and tag not in _DESCEND_ALWAYS and not (self.want_layouts and tag in _DESCEND_LAYOUT):
            return sibling
        return None

    def on_subrange_type(self, v: tuple[Any, ...]) -> None:
        """A dimension of the array it is in: its count, or upper bound + 1."""
        stack = self.stack
        if stack and stack[-1][0] == TAG_array_type:
            _, _, _, _, count, upper, _, _ = v
            n = count if count is not None else (upper + 1 if isinstance(upper, int) else None)
            self.raw_types[stack[-1][1]][7].append(n)

    def on_member(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """With layouts: a member of the struct or union it is in."""
        if self.want_layouts and self.stack:
            parent = self.raw_types.get(self.stack[-1][1])
            if parent is not None:
                name, ref, loc, data_bit_off, bit_size, old_bit_off, byte_size = v
                member = _member(
                    name,
                    ref,
                    loc,
                    data_bit_off,
                    bit_size,
                    old_bit_off,
                    byte_size,
                    self.raw_types,
                    self.unit.shape.endian,
                )
                parent[7].append(member)
        return None

    def on_enumerator(self, tag: int, die: int, children: bool, v: tuple[Any, ...]) -> int | None:
        """With layouts: an enumerator of the enum it is in."""
        if self.want_layouts and self.stack:
            parent = self.raw_types.get(self.stack[-1][1])
            if parent is not None:
                ename, value = v
                parent[7].append((ename, value if isinstance(value, int) else 0))
        return None


def _unit_facts(
    name: str | None,
    comp_dir: str | None,
    producer: str | None,
    language: int | None,
    stmt_list: int | None,
    files: Callable[[int, str | None], list[str]],
) -> tuple[UnitFacts, list[str] | None]:
    """The unit's facts from its compile-unit DIE, and its file names (None: a
    Rust unit, whose facts are these alone)."""
    facts = UnitFacts(name, comp_dir, producer, language)
    if language == LANG_RUST:
        return facts, None
    if name and comp_dir and name.startswith(".."):
        facts.name = os.path.join(comp_dir, name)
    return facts, files(stmt_list, comp_dir) if stmt_list is not None else []


def _finish(
    facts: UnitFacts,
    file_names: list[str],
    subs: list[tuple[Any, ...]],
    edges: list[tuple[int, int, str, int | None]],
    sub_info: dict[int, tuple[str, int, bool]],
    params: dict[int, list[tuple[str | None, int] | None]],
    raw_types: dict[int, list[Any]],
    unit: Unit,
    config: WalkConfig,
    seen: set[object],
) -> UnitFacts:
    """Records, prototypes and layouts from the raw tuples of a walk (Python's or C's)."""
    want_layouts = config.want_layouts

    def path(index: int | None) -> str | None:
        if index is None:
            return None
        return file_names[index] if 0 <= index < len(file_names) else None

    facts.subs = [
        _tuple_new(
            Sub, (die, name, external, path(file), line, inline, low_pc, declaration, origin, concrete)
        )
        for die, name, external, file, line, inline, low_pc, declaration, origin, concrete in subs
    ]
    facts.edges = list(map(_tuple_new, repeat(Edge), edges))
    graph = _Graph(raw_types, unit.shape.address_size)
    texts = cdecl.TypeTexts(graph)  # parameter types repeat across a unit's functions
    if want_layouts:  # in DIE order, before prototypes reach some: layouts come out in that order
        for off in raw_types:
            graph[off]
    # Definitions first: a declaration's prototype is used only when no unit defines the name.
    for die, (name, rtype, is_decl) in sorted(sub_info.items(), key=lambda kv: kv[1][2]):
        if (
            name in config.btf_funcs
            or name in config.prototyped
            or name in seen
            or (is_decl and ("decl", name) in seen)
        ):
            continue
        plist = params[die]
        variadic = bool(plist) and plist[-1] is None
        fid = -die  # a synthetic id that cannot clash with a DIE offset
        graph[fid] = CType("func", ref=rtype, params=[x for x in plist if x is not None], variadic=variadic)
        try:
            facts.prototypes[name] = UnitPrototype(cdecl.prototype(graph, fid, name, "dwarf", texts), is_decl)
            seen.add(("decl", name) if is_decl else name)
        except (KeyError, ValueError):
            pass  # a type this unit does not describe; another unit may
    if want_layouts:
        # Headers define the same types in thousands of units: a type is laid
        # out only when no unit this worker walked before had one alike (LayoutBuilder.key).
        builder = cdecl.LayoutBuilder(graph)
        for t in builder.named_nodes():
            key = builder.key(t)
            if key not in seen and (layout := builder.layout(t)) is not None:
                seen.add(key)
                facts.layouts.append(layout)
        for typedef in builder.typedefs():
            if ("typedef", *typedef.key()) not in seen:
                seen.add(("typedef", *typedef.key()))
                facts.typedefs.append(typedef)
    return facts


def _member(
    name: str | None,
    ref: int | None,
    loc: int | bytes | None,
    data_bit_off: int | None,
    bit_size: int | None,
    old_bit_off: int | None,
    byte_size: int | None,
    raw_types: dict[int, list[Any]],
    endian: str,
) -> Member:
    """A struct member from DWARF 2-5 encodings of its position."""
    if isinstance(loc, bytes):  # DWARF 2/3 location expression: DW_OP_plus_uconst n
        value = shift = 0
        if loc and loc[0] == 0x23:
            for b in loc[1:]:
                value |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
        loc = value
    byte_off = loc or 0
    if data_bit_off is not None:
        bit = data_bit_off
    elif old_bit_off is not None and bit_size:
        # DWARF 2/3 bitfields count from the most significant bit of the storage unit.
        storage = byte_size or (raw_types.get(ref or 0, [0, 0, 0, 4])[3] or 4)
        if endian == "little":
            bit = byte_off * 8 + storage * 8 - old_bit_off - bit_size
        else:
            bit = byte_off * 8 + old_bit_off
    else:
        bit = byte_off * 8
    # positional: hot loop (every member of a DWARF-only build's layouts; keywords cost ~4x per Member)
    return Member(name, ref or 0, bit, bit_size or 0)


# ---------------------------------------------------------------------------
# The C walk (_dwarfwalk.c, optional): walk_unit in C, with the Python walk as fallback
# ---------------------------------------------------------------------------


def _load_accel() -> Any:
    """The compiled walk; None when it is not built, KERNSURF_NO_ACCEL is set
    (not "0"), or it cannot be told dwarf_forms' rules."""
    if os.environ.get("KERNSURF_NO_ACCEL", "") not in ("", "0"):
        return None
    try:
        from ingest.readers import _dwarfwalk  # type: ignore[attr-defined]
    except ImportError:
        return None
    ids = _dwarfwalk.CATEGORY_IDS
    # Every tag whose walk category is not "skip" (tags are 16 bits: DW_TAG_hi_user is 0xffff),
    # without types and with them.
    maps = [
        {tag: cat for tag in range(0x10000) if (cat := walk_category(tag, types)) != "skip"}
        for types in (False, True)
    ]
    if not all(set(tags.values()) <= set(ids) for tags in maps):
        return None
    try:
        _dwarfwalk.configure(
            *({tag: ids[cat] for tag, cat in tags.items()} for tags in maps),
            {ids[cat]: CATEGORIES[cat] for cat in ids},
            _STRING_ATTRS,
            _STRING_FORMS,
            _BLOCK_ATTRS,
            _BLOCK_FORMS,
            Member,
        )
    except ValueError:  # the C walk fills other slots than CATEGORIES says
        return None
    return _dwarfwalk


_accel: Any = _load_accel()
#: Compiled abbreviation tables by their bytes, unit shape and want_types, kept across walks (as _tables).
_ctables: dict[tuple[bytes, tuple, bool], object] = {}


def _ctable(w: dict[str, Any], unit: Unit) -> object:
    """The unit's abbreviation table compiled for the C walk; raises _accel.Unsupported."""
    shape = unit.shape
    types = w["config"].want_types
    end = w["abbrev_ends"].get(unit.abbrev_offset)
    key = (bytes(w["abbrev"][unit.abbrev_offset : end]), shape.key(), types)
    table = _ctables.get(key)
    if table is None:
        if len(_ctables) >= _TABLES_KEPT:
            _ctables.clear()
        big = shape.endian == "big"
        args = (shape.offset_size, shape.address_size, shape.version, big, types)
        table = _ctables[key] = _accel.parse_table(w["abbrev"], unit.abbrev_offset, *args)
    return table


def _walk_unit_c(
    w: dict[str, Any], unit: Unit, strings: Strings, files: Callable[[int, str | None], list[str]]
) -> UnitFacts | None:
    """walk_unit by the C walk; None when it cannot take the unit (the Python
    walk then reads it, or says why it cannot). It gives _finish only the
    candidates it needs, those of names not skipped (btf_funcs, prototyped,
    seen), and the type DIEs their prototypes reach (with layouts: every one)."""
    config: WalkConfig = w["config"]
    key = (unit.abbrev_offset, unit.shape.key())
    strings.offset_size = unit.shape.offset_size
    strings.address_size = unit.shape.address_size
    try:
        table = w["ctable_cache"].get(key)
        if table is None:
            table = w["ctable_cache"][key] = _ctable(w, unit)
        cu, subs, edges, sub_info, params, str_base, addr_base, raw_types = _accel.walk(
            info=w["info"],
            table=table,
            die_offset=unit.die_offset,
            end=unit.end,
            unit_offset=unit.offset,
            debug_str=strings.debug_str,
            line_str=strings.line_str,
            str_offsets=strings.str_offsets,
            addr=strings.addr,
            str_base=strings.str_base,
            addr_base=strings.addr_base,
            btf_funcs=config.btf_funcs,
            prototyped=config.prototyped,
            seen=w["seen"],
            layouts=config.want_layouts,
        )
    except _accel.Unsupported:
        return None
    if str_base is not None:
        strings.str_base = str_base
    if addr_base is not None:
        strings.addr_base = addr_base
    name, comp_dir, producer, language, stmt_list = cu
    facts, names = _unit_facts(name, comp_dir, producer, language, stmt_list, files)
    if names is None:
        return facts
    return _finish(facts, names, subs, edges, sub_info, params, raw_types or {}, unit, config, w["seen"])


def _file_names_c(
    line: bytes, endian: str, strings: Strings, stmt_list: int, comp_dir: str | None
) -> list[str]:
    """_file_names by the C reader; by dwarf_lines where the C reader hands the table back."""
    try:
        big = endian == "big"
        return _accel.file_names(line, stmt_list, big, comp_dir, strings.debug_str, strings.line_str)
    except _accel.Unsupported:
        return _file_names(line, endian, strings, stmt_list, comp_dir)


# ---------------------------------------------------------------------------
# Driving the walk over all units, in parallel
# ---------------------------------------------------------------------------

#: The sections the walk reads (the ones an image has).
DEBUG_SECTIONS = (
    ".debug_info",
    ".debug_abbrev",
    ".debug_str",
    ".debug_line",
    ".debug_line_str",
    ".debug_str_offsets",
    ".debug_addr",
)

#: The walk's inputs, set before the worker processes fork (they inherit it).
_worker: dict[str, Any] = {}
#: Parsed abbreviation tables by their bytes, kept across walks in one process:
#: the modules of one build repeat the same tables compile unit after compile unit.
_tables: dict[tuple[bytes, tuple, bool], dict[int, Abbrev]] = {}
_TABLES_KEPT = 20000


def _abbrevs(w: dict[str, Any], unit: Unit) -> dict[int, Abbrev]:
    """The unit's abbreviation table: from _tables when the same bytes were parsed before."""
    want_types = w["config"].want_types
    end = w["abbrev_ends"].get(unit.abbrev_offset)
    if end is None:
        return parse_abbrevs(w["abbrev"], unit.abbrev_offset, unit.shape, want_types)
    key = (bytes(w["abbrev"][unit.abbrev_offset : end]), unit.shape.key(), want_types)
    table = _tables.get(key)
    if table is None:
        if len(_tables) >= _TABLES_KEPT:
            _tables.clear()
        table = _tables[key] = parse_abbrevs(w["abbrev"], unit.abbrev_offset, unit.shape, want_types)
    return table


def _table_ends(unit_list: list[Unit], size: int) -> dict[int, int]:
    """Abbreviation table offset -> where the next table starts (the section's end for the last)."""
    starts = sorted({u.abbrev_offset for u in unit_list})
    return dict(zip(starts, [*starts[1:], size]))


def _walk_batch(indexes: list[int]) -> list[UnitFacts]:
    w = _worker
    out = []
    for i in indexes:
        unit = w["units"][i]
        try:
            out.append(_walk_one(w, unit))
        except (IndexError, ValueError) as e:
            raise BadDwarf(f"malformed DIE in unit at 0x{unit.offset:x} ({e.__class__.__name__})") from None
    return out


def _walk_one(w: dict[str, Any], unit: Unit) -> UnitFacts:
    """One unit by the C walk, else by the Python walk (both finish it with _finish)."""
    strings: Strings = w["strings"]
    if _accel is not None:
        c_files = partial(_file_names_c, w["line"], unit.shape.endian, strings)
        if (facts := _walk_unit_c(w, unit, strings, c_files)) is not None:
            return facts
    files = partial(_file_names, w["line"], unit.shape.endian, strings)
    key = (unit.abbrev_offset, unit.shape.key())
    abbrevs = w["abbrev_cache"].get(key)
    if abbrevs is None:
        abbrevs = w["abbrev_cache"][key] = _abbrevs(w, unit)
    return walk_unit(w["info"], unit, abbrevs, strings, files, w["config"], w["seen"])


def _file_names(
    line: bytes, endian: str, strings: Strings, stmt_list: int, comp_dir: str | None
) -> list[str]:
    return dwarf_lines.file_names(line, stmt_list, endian, comp_dir, strings.strp, strings.line_strp)


def walk(
    unit_list: list[Unit],
    sections: dict[str, bytes],
    endian: str,
    config: WalkConfig,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[UnitFacts]:
    """Start walking every unit in worker processes; returns an iterator of
    UnitFacts in unit order. `progress(done, total)` after each batch."""
    _worker.clear()
    _worker.update(
        units=unit_list,
        info=sections[".debug_info"],
        line=sections.get(".debug_line", b""),
        abbrev=sections[".debug_abbrev"],
        abbrev_cache={},
        ctable_cache={},
        abbrev_ends=_table_ends(unit_list, len(sections[".debug_abbrev"])),
        config=config,
        seen=set(),
        strings=Strings(
            sections.get(".debug_str", b""),
            sections.get(".debug_line_str", b""),
            sections.get(".debug_str_offsets", b""),
            sections.get(".debug_addr", b""),
            endian,
        ),
    )
    # Batches of consecutive units, sized by bytes so both processes stay busy.
    batches: list[list[int]] = []
    budget = max(1, sum(u.end - u.offset for u in unit_list) // 200)
    cur: list[int] = []
    size = 0
    for i, u in enumerate(unit_list):
        cur.append(i)
        size += u.end - u.offset
        if size >= budget:
            batches.append(cur)
            cur, size = [], 0
    if cur:
        batches.append(cur)
    jobs = jobs or min(os.cpu_count() or 1, 4)
    if jobs <= 1 or len(batches) < 4:
        return _collect(map(_walk_batch, batches), None, len(unit_list), progress)
    # Workers run without the cyclic garbage collector: the walk makes millions of
    # short-lived acyclic records, which the collector would only scan over and over.
    pool = multiprocessing.get_context("fork").Pool(jobs, initializer=gc.disable)
    return _collect(pool.imap(_walk_batch, batches), pool, len(unit_list), progress)


def _collect(
    results: Iterable[list[UnitFacts]],
    pool: Pool | None,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> Iterator[UnitFacts]:
    done, finished = 0, False
    try:
        for batch in results:
            for facts in batch:
                done += 1
                yield facts
            if progress:
                progress(done, total)
        finished = True
    finally:
        if pool is not None and finished:
            # every result read: the workers wait for tasks, and end on close (terminate
            # could kill one holding the task queue's lock, and leave the pool waiting for it)
            pool.close()
            pool.join()
        elif pool is not None:
            pool.terminate()
        _worker.clear()
