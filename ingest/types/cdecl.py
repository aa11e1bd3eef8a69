"""C syntax for the neutral type graph (model.TypeGraph): type names,
declarations, prototypes and struct/union/enum layouts.

Spelling follows pahole and the reference pages: base types as the compiler
names them ("long unsigned int"), `*` attached to the declarator
("struct page **pages"), anonymous aggregates as "struct {...}", and a pointer
to a function returning a pointer as "void * (*vmap)(struct dma_buf *)"
(the return type's text, a space, then the declarator). Parameters inside
function types are printed without names.

This is the only module that knows C syntax; it works on any TypeGraph.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import NamedTuple

from ingest.model import CType, Field, Layout, Member, Prototype, Typedef, TypeGraph

_QUALIFIER_WORDS = {"const": "const", "volatile": "volatile", "restrict": "restrict", "atomic": "_Atomic"}
_QUALIFIER_ORDER = ("const", "volatile", "restrict", "atomic")
_DECL_PREFIXES = tuple(w + " " for w in _QUALIFIER_WORDS.values())
_AGGREGATES = ("struct", "union")
_MAX_DEPTH = 200


class _Printer:
    """Builds C declarators inside out; `canonical` resolves typedefs."""

    __slots__ = ("graph", "canonical")

    def __init__(self, graph: TypeGraph, canonical: bool = False) -> None:
        self.graph = graph
        self.canonical = canonical

    def node(self, tid: int) -> CType:
        """The graph node for `tid`, with a clear error when it is missing."""
        try:
            return self.graph[tid]
        except KeyError:
            raise ValueError(f"type id {tid} is not in the graph") from None

    def transparent(self, t: CType) -> bool:
        """Whether `t` is skipped when looking for what a type really is."""
        return t.kind in _QUALIFIER_WORDS or (self.canonical and t.kind == "typedef")

    def peel(self, tid: int) -> CType:
        """The first node below qualifiers (and typedefs when canonical)."""
        t = self.node(tid)
        for _ in range(_MAX_DEPTH):
            if not self.transparent(t):
                return t
            t = self.node(t.ref)
        raise ValueError(f"type {tid}: chain too deep or cyclic")

    def needs_declarator(self, tid: int) -> bool:
        """Whether a function returning `tid` must nest its declarator inside
        the return type (the return type is a pointer to function or array)."""
        t = self.node(tid)
        for _ in range(_MAX_DEPTH):
            if t.kind in ("func", "array"):
                return True
            if t.kind != "ptr" and not self.transparent(t):
                return False
            t = self.node(t.ref)
        raise ValueError(f"type {tid}: chain too deep or cyclic")

    def params(self, t: CType, depth: int) -> str:
        """Parameter list of a function type, types only."""
        texts = [self.decl(ptid, "", depth) for _, ptid in t.params or ()]
        if t.variadic:
            texts.append("...")
        return ", ".join(texts) if texts else "void"

    def decl(self, tid: int, d: str, depth: int = 0, quals: frozenset[str] = frozenset()) -> str:
        """The declaration of declarator text `d` ("" = abstract) of type `tid`
        qualified by `quals` (qualifiers of an array reach its elements)."""
        if depth > _MAX_DEPTH:
            raise ValueError(f"type {tid}: declarator too deep or cyclic")
        t = self.node(tid)
        kind = t.kind
        if kind in _QUALIFIER_WORDS or (self.canonical and kind == "typedef"):
            more = {kind} if kind in _QUALIFIER_WORDS else set()
            return self.decl(t.ref, d, depth + 1, quals | more)
        words = " ".join(_QUALIFIER_WORDS[q] for q in _QUALIFIER_ORDER if q in quals)
        if kind == "ptr":
            if words:  # qualifies the pointer itself: "char * const p"
                d = f"{words} {d}" if d else words
            d = ("* " + d) if d.startswith(_DECL_PREFIXES) or d in _QUALIFIER_WORDS.values() else ("*" + d)
            if self.peel(t.ref).kind in ("func", "array"):
                d = "(" + d + ")"
            return self.decl(t.ref, d, depth + 1)
        if kind == "array":
            n = t.count
            if self.canonical and n == 0:
                n = None  # x[0] and x[] mean the same trailing storage
            return self.decl(t.ref, f"{d}[{'' if n is None else n}]", depth + 1, quals)
        if kind == "func":  # a qualified function type means nothing: drop them
            if d.startswith("(") and not self.needs_declarator(t.ref):
                return f"{self.decl(t.ref, '', depth + 1)} {d}({self.params(t, depth + 1)})"
            return self.decl(t.ref, f"{d}({self.params(t, depth + 1)})", depth + 1)
        base = _base_name(t)
        if words:
            base = f"{words} {base}"
        return f"{base} {d}" if d else base


def _base_name(t: CType) -> str:
    """Text of a type that needs no declarator: base, tagged or typedef name."""
    kind = t.kind
    if kind == "void":
        return "void"
    if kind in ("struct", "union", "enum"):
        return f"{kind} {t.name}" if t.name else f"{kind} {{...}}"
    if kind == "fwd":
        return f"{t.fwd_kind or 'struct'} {t.name}"
    return t.name or f"<anonymous {kind}>"


def type_name(graph: TypeGraph, tid: int) -> str:
    """Abstract C type text, e.g. "struct page **" or "int (*)(struct dma_buf *)"."""
    return _Printer(graph).decl(tid, "")


def canonical_type_name(graph: TypeGraph, tid: int) -> str:
    """type_name with every typedef resolved, for comparing types by meaning.

    Qualifiers are printed in a fixed order and `[0]` arrays as `[]`.
    """
    return _Printer(graph, canonical=True).decl(tid, "")


def declaration(graph: TypeGraph, tid: int, name: str | None) -> str:
    """C declaration of `name` with type `tid`, e.g. "char comm[16]";
    the abstract type text when `name` is None or empty."""
    return _Printer(graph).decl(tid, name or "")


_NAME = "\0"  # where the declared name goes in a cached declaration (TypeTexts)


class TypeTexts:
    """The texts of a graph's types, printed once per type id: abstract, as a
    declaration of a name, canonical. A split graph's (a module's BTF) take
    the base's for the base's type ids, printed once for all the modules."""

    __slots__ = ("printer", "canonical", "cache", "base", "graph", "_last_id")

    def __init__(self, graph: TypeGraph, base: TypeTexts | None = None) -> None:
        self.graph = graph
        self.printer, self.canonical = _Printer(graph), _Printer(graph, canonical=True)
        self.cache: dict[int, tuple[str, str, str]] = {}
        self.base = base
        self._last_id: int | None = None

    @property
    def last_id(self) -> int:
        """The graph's last type id (a split graph's own ids come after its base's)."""
        if self._last_id is None:
            self._last_id = max(self.graph, default=0)
        return self._last_id

    def owns(self, tid: int) -> bool:
        """Whether `tid` is this graph's own (not its base's)."""
        return self.base is None or tid > self.base.last_id

    def of(self, tid: int) -> tuple[str, str, str]:
        """(abstract text, declaration with _NAME for the name, canonical text)."""
        owner = self if self.owns(tid) else self.base
        assert owner is not None
        found = owner.cache.get(tid)
        if found is None:
            found = owner.cache[tid] = (
                owner.printer.decl(tid, ""),
                owner.printer.decl(tid, _NAME),
                owner.canonical.decl(tid, ""),
            )
        return found


def prototype(
    graph: TypeGraph, func_tid: int, name: str, source: str, texts: TypeTexts | None = None
) -> Prototype:
    """The prototype of function `name` whose type is the "func" node `func_tid`:
    "void *vmap(struct page **pages, unsigned int count, ...);". `texts`: the
    graph's TypeTexts, when prototypes of many functions are printed."""
    texts = texts or TypeTexts(graph)
    t = texts.printer.node(func_tid)
    if t.kind != "func":
        raise ValueError(f"type {func_tid} is a {t.kind}, not a function type")
    params = [(pname, texts.of(ptid)) for pname, ptid in t.params or ()]
    decls = [named.replace(_NAME, pname) if pname else abstract for pname, (abstract, named, _) in params]
    if t.variadic:
        decls.append("...")
    return_type, return_named, canon_return = texts.of(t.ref)
    return Prototype(
        return_type=return_type,
        params=[(pname, abstract) for pname, (abstract, _, _) in params],
        variadic=t.variadic,
        text=return_named.replace(_NAME, f"{name}({', '.join(decls) if decls else 'void'})") + ";",
        source=source,
        canon_params=[canon for _, (_, _, canon) in params],
        canon_return=canon_return,
    )


# ---------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------


class _Sizer:
    """sizeof() over a graph; pointers take the size of `long` when unstated."""

    __slots__ = ("graph", "pointer_size")

    def __init__(self, graph: TypeGraph, pointer_size: int | None = None) -> None:
        self.graph = graph
        self.pointer_size = pointer_size or next(
            (
                t.size
                for t in graph.values()
                if t.kind == "int" and t.name in ("long unsigned int", "long int")
            ),
            None,
        )
        base = getattr(graph, "base", None)  # a split BTF graph (readers.btf.Overlay): `long` is in its base
        if self.pointer_size is None and base is not None:
            self.pointer_size = _Sizer(base).pointer_size

    def size(self, tid: int) -> int | None:
        """Byte size of `tid`, None when unknown (void, function, fwd, flexible)."""
        t = self.graph[tid]
        mult = 1
        for _ in range(_MAX_DEPTH):
            kind = t.kind
            if kind == "array":
                if t.count is None:
                    return None
                mult *= t.count
            elif kind == "ptr":
                size = t.size or self.pointer_size
                return None if size is None else mult * size
            elif kind not in _QUALIFIER_WORDS and kind != "typedef":
                return None if t.size is None or kind in ("func", "fwd", "void") else mult * t.size
            t = self.graph[t.ref]
        raise ValueError(f"type {tid}: chain too deep or cyclic")


def _container(graph: TypeGraph, tid: int, named: bool) -> CType | None:
    """The aggregate whose members are shown inside a member of type `tid`:
    any struct/union for an unnamed member; for a named member only an
    anonymous one, also through arrays ("struct {...} x[4]": element 0)."""
    t = graph[tid]
    for _ in range(_MAX_DEPTH):
        kind = t.kind
        if kind in _AGGREGATES:
            return t if (not named or t.name is None) and t.members else None
        if kind in _QUALIFIER_WORDS or (kind == "typedef" and not named) or (kind == "array" and named):
            t = graph[t.ref]
            continue
        return None
    return None


def type_kind(graph: TypeGraph, tid: int) -> str:
    """What a member's type is below typedefs and qualifiers: "int", "ptr",
    "func_ptr" (a pointer to a function), "struct", "union", "enum", "float",
    "void", "func"; arrays prefix their element's kind with "array "
    ("array int", "array array struct"). A forward declaration counts as what
    it declares. libbpf's CO-RE compatibility rules compare these."""
    t = _node(graph, tid)
    prefix = ""
    for _ in range(_MAX_DEPTH):
        kind = t.kind
        if kind in _QUALIFIER_WORDS or kind == "typedef":
            t = _node(graph, t.ref)
        elif kind == "array":
            prefix += "array "
            t = _node(graph, t.ref)
        elif kind == "ptr":
            pointee = _node(graph, t.ref)
            while pointee.kind in _QUALIFIER_WORDS or pointee.kind == "typedef":
                pointee = _node(graph, pointee.ref)
            return prefix + ("func_ptr" if pointee.kind == "func" else "ptr")
        elif kind == "fwd":
            return prefix + (t.fwd_kind or "struct")
        else:
            return prefix + kind
    raise ValueError(f"type {tid}: chain too deep or cyclic")


_VOID = CType("void")


def _node(graph: TypeGraph, tid: int) -> CType:
    """graph[tid], with id 0 (void) allowed to be absent."""
    t = graph.get(tid)
    if t is None:
        if tid == 0:
            return _VOID
        raise ValueError(f"type id {tid} is not in the graph")
    return t


class LayoutBuilder:
    """Builds the layouts of one graph; each struct/union/enum node gets one
    Layout (memoised by node), which members holding it reference. A split
    graph's builder takes a `base`: the builder of the graph it extends
    (vmlinux's, for a module's BTF), whose layouts and member texts serve
    every type id of the base, built once for all the modules."""

    __slots__ = ("graph", "sizer", "texts", "kinds", "memo", "base")

    def __init__(self, graph: TypeGraph, base: LayoutBuilder | None = None) -> None:
        self.graph = graph
        self.sizer: _Sizer = _Sizer(graph, base.sizer.pointer_size if base is not None else None)
        self.texts: TypeTexts = TypeTexts(graph, base.texts if base is not None else None)
        self.kinds: dict[int, tuple[str, CType | None]] = {}  # type id -> (type_kind, aggregate held)
        self.memo: dict[int, Layout | None] = {}  # id(node) -> its layout; None while being built
        self.base = base

    def named(self) -> list[Layout]:
        """Every named struct, union and enum of the graph (its own nodes, for
        a split graph), fields flattened (see model.Field); same-named distinct
        types are all returned."""
        return [lay for t in self.named_nodes() if (lay := self.layout(t)) is not None]

    def named_nodes(self) -> Iterator[CType]:
        """The graph's named struct, union and enum nodes, each once."""
        seen: set[int] = set()  # one node may sit under several ids (BTF TYPE_TAG)
        for t in self.graph.values():
            if t.name and t.kind in ("struct", "union", "enum") and id(t) not in seen:
                seen.add(id(t))
                yield t

    def typedefs(self) -> list[Typedef]:
        """Every named typedef of the graph (its own nodes, for a split graph),
        with the layout of the struct, union or enum it resolves to."""
        out: list[Typedef] = []
        seen: set[int] = set()
        for t in self.graph.values():
            if t.kind != "typedef" or not t.name or id(t) in seen:
                continue
            seen.add(id(t))
            try:
                target, _, canon = self.texts.of(t.ref)
                kind, held = self.member_type(t.ref)
                size = self.sizer.size(t.ref)
            except (KeyError, ValueError):
                continue  # a target this graph does not describe (a DWARF unit's partial view)
            layout = self.held_layout(t.ref, held) if held is not None else None
            out.append(Typedef(name=t.name, target=target, canon=canon, kind=kind, size=size, layout=layout))
        return out

    def built(self) -> list[Layout]:
        """Every layout built so far, anonymous and held ones included."""
        return [lay for lay in self.memo.values() if lay is not None]

    def _owner(self, tid: int) -> LayoutBuilder:
        """The builder whose graph type `tid` is from."""
        return self if self.base is None or self.texts.owns(tid) else self.base

    def layout(self, t: CType) -> Layout | None:
        """The layout of struct/union/enum node `t` (None inside a by-value cycle,
        which only malformed input has)."""
        key = id(t)
        if key in self.memo:
            return self.memo[key]
        if self.base is not None and key in self.base.memo:
            return self.base.memo[key]
        self.memo[key] = None
        if t.kind == "enum":
            lay = Layout("enum", t.name or "", t.size or 0, values=list(t.enumerators or ()))
        else:
            fields: list[Field] = []
            self.flatten(t, fields)
            lay = Layout(kind=t.kind, name=t.name or "", size=t.size or 0, fields=fields)
        self.memo[key] = lay
        return lay

    def member_type(self, tid: int) -> tuple[str, CType | None]:
        """(type_kind, the struct/union/enum node held, arrays stripped, or None)."""
        owner = self._owner(tid)
        found = owner.kinds.get(tid)
        if found is None:
            graph = owner.graph
            t = _node(graph, tid)
            for _ in range(_MAX_DEPTH):
                if t.kind in _QUALIFIER_WORDS or t.kind in ("typedef", "array"):
                    t = _node(graph, t.ref)
                else:
                    break
            held = t if t.kind in ("struct", "union", "enum") else None
            found = owner.kinds[tid] = (type_kind(graph, tid), held)
        return found

    def held_layout(self, tid: int, held: CType) -> Layout | None:
        """The layout of `held`, the aggregate a member of type `tid` holds."""
        return self._owner(tid).layout(held)

    def members(self, agg: CType) -> Iterator[_Flat]:
        """`agg`'s members in layout order, anonymous containers descended
        into (each right after the member that holds it), with their texts."""
        return self._members(agg, 0, None, set(), count())

    def _members(
        self, agg: CType, base: int, parent: int | None, active: set[int], positions: Iterator[int]
    ) -> Iterator[_Flat]:
        # A method, not a closure over itself: that cycle would keep every
        # unit's graph alive in walks that run without the cyclic collector.
        active.add(id(agg))
        for m in agg.members or ():
            abstract, named, canon = self.texts.of(m.type)
            decl = named.replace(_NAME, m.name) if m.name else abstract
            if m.bit_size:
                decl += f"{':' if m.name else ' :'}{m.bit_size}"
            flat = _Flat(next(positions), m, abstract, decl, canon, base + m.bit_offset, parent)
            yield flat
            inner = _container(self.graph, m.type, m.name is not None)
            if inner is not None and id(inner) not in active:
                yield from self._members(inner, flat.bit_offset, flat.position, active, positions)
        active.discard(id(agg))

    def key(self, t: CType) -> tuple:
        """layout_key(self.layout(t)), made without making the layout (most of
        a DWARF-only walk's types repeat)."""
        if t.kind == "enum":
            return (t.kind, t.name or "", t.size or 0, (), tuple(t.enumerators or ()))
        fields = tuple((f.member.name, f.decl, f.bit_offset) for f in self.members(t))
        return (t.kind, t.name or "", t.size or 0, fields, ())

    def flatten(self, agg: CType, out: list[Field]) -> None:
        """Append `agg`'s fields to `out` (see members())."""
        for f in self.members(agg):
            kind, held = self.member_type(f.member.type)
            out.append(
                Field(
                    position=f.position,
                    name=f.member.name,
                    type_text=f.abstract,
                    decl=f.decl,
                    bit_offset=f.bit_offset,
                    bit_size=f.member.bit_size,
                    byte_size=self.sizer.size(f.member.type),
                    parent=f.parent,
                    canon_type=f.canon,
                    type_kind=kind,
                    type_layout=self.held_layout(f.member.type, held) if held is not None else None,
                )
            )


class _Flat(NamedTuple):
    """One member as a layout shows it (LayoutBuilder.members)."""

    position: int
    member: Member
    abstract: str  # its type's text
    decl: str  # its declaration, bitfield width included
    canon: str  # its type's text, typedefs resolved
    bit_offset: int  # from the start of the outermost aggregate
    parent: int | None  # position of the anonymous member holding it


def layouts(graph: TypeGraph) -> list[Layout]:
    """Every named struct, union and enum of the graph, fields flattened
    (see model.Field); same-named distinct types are all returned. Members
    reference the layouts of the aggregates they hold (model.Field.type_layout),
    anonymous ones included."""
    return LayoutBuilder(graph).named()


def _comment(f: Field) -> str:
    """pahole-like offset comment: "/* byte_offset byte_size */", or for a
    bitfield "/* unit_offset: bit_in_unit unit_size */" where the unit is the
    naturally aligned storage unit of the bitfield's type."""
    size = "?" if f.byte_size is None else str(f.byte_size)
    if not f.bit_size:
        return f"/* {f.bit_offset // 8} {size} */"
    unit = f.byte_size if f.byte_size else 1
    start = f.bit_offset // (unit * 8) * unit
    bit = f.bit_offset - start * 8
    if bit + f.bit_size > unit * 8:  # straddles its unit (packed): use bytes
        start, bit = f.bit_offset // 8, f.bit_offset % 8
    return f"/* {start}: {bit} {size} */"


def layout_text(layout: Layout, comments: bool = True) -> str:
    """The C definition, tab-indented, anonymous members nested; with
    `comments`, each member ends with _comment()'s offsets and the body with
    "/* size: N */" (enums carry no comments)."""
    if layout.kind == "enum":
        body = [f"\t{n} = {v}," for n, v in layout.values]
        return "\n".join([f"enum {layout.name} {{", *body, "};"])
    children: dict[int | None, list[Field]] = {}
    for f in layout.fields:
        children.setdefault(f.parent, []).append(f)
    lines = [f"{layout.kind} {layout.name} {{"]

    def emit(f: Field, depth: int) -> None:
        tabs = "\t" * depth
        tail = f"\t{_comment(f)}" if comments else ""
        kids = children.get(f.position)
        if not kids:
            lines.append(f"{tabs}{f.decl};{tail}")
            return
        head, mark, after = f.decl.partition(" {...}")
        if not mark:  # unnamed member of a tagged type (-fms-extensions)
            head, after = f.decl, ""
        lines.append(f"{tabs}{head} {{")
        for k in kids:
            emit(k, depth + 1)
        lines.append(f"{tabs}}}{after};{tail}")

    for f in children.get(None, ()):
        emit(f, 1)
    if comments:
        lines += ["", f"\t/* size: {layout.size} */"]
    lines.append("};")
    return "\n".join(lines)


def layout_key(lay: Layout) -> tuple:
    """What tells two layouts of a name apart where a DWARF walk meets the same
    type again in another unit: kind, name, size, (name, declaration, bit
    offset) of every field, enumerators (LayoutBuilder.key of its node)."""
    fields = tuple((f.name, f.decl, f.bit_offset) for f in lay.fields)
    return (lay.kind, lay.name, lay.size, fields, tuple(lay.values))
