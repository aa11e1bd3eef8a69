"""Read a raw .BTF blob (an ELF section's contents or /sys/kernel/btf/vmlinux)
into the neutral type graph of model.py.

BTF type ids are used directly as graph ids (0 is void). Kinds that are not C
types (FUNC, VAR, DATASEC, DECL_TAG) keep their ids as plain "void" nodes so
the numbering stays aligned; what they say is returned beside the graph.
TYPE_TAG ids map to the very CType object of the type they tag.

A split blob (a module's .BTF) is read over its base's BtfInfo (vmlinux):
its ids continue after the base's last id and its string offsets after the
base's string section. Its BtfInfo holds only the blob's own types, FUNCs and
VARs; lookups by id (graph, func_ids, var_ids) fall back to the base.
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from ingest.errors import BadBtf
from ingest.model import CType, Member, TypeGraph
from ingest.readers import btf_format as F


class BtfDecl(NamedTuple):
    """A FUNC or VAR, by id: its name, linkage and type."""

    name: str
    linkage: int  # F.FUNC_* for a FUNC, F.VAR_* for a VAR
    type_id: int  # the FUNC's FUNC_PROTO, the VAR's type


class DatasecEntry(NamedTuple):
    """One FUNC or VAR a DATASEC places (struct btf_var_secinfo)."""

    type_id: int  # the FUNC or VAR id
    offset: int
    size: int


_K = TypeVar("_K")
_V = TypeVar("_V")


class Overlay(dict[_K, _V]):
    """A split blob's own entries over its base's mapping: indexing, get() and
    `in` fall back to `hidden` (own keys for base values: a split TYPE_TAG on a
    base type), then to the base; iteration and len() cover the own entries only."""

    __slots__ = ("base", "hidden")

    def __init__(self, base: dict[_K, _V]) -> None:
        super().__init__()
        self.base = base
        self.hidden: dict[_K, _V] = {}

    def __missing__(self, key: _K) -> _V:
        hidden = self.hidden.get(key)
        return self.base[key] if hidden is None else hidden

    def get(self, key: _K, default: Any = None) -> Any:
        """The own entry, else the hidden one, else the base's, else `default`."""
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key in self.hidden:
            return self.hidden[key]
        return self.base.get(key, default)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.hidden or key in self.base


@dataclass(slots=True)
class BtfInfo:
    """What one BTF blob tells: the type graph plus functions, variables, tags."""

    graph: TypeGraph
    funcs: dict[str, list[int]] = field(default_factory=dict)  # FUNC name -> FUNC_PROTO ids
    decl_tags: dict[str, list[str]] = field(default_factory=dict)  # tag -> FUNC/VAR names
    func_linkage: dict[str, int] = field(default_factory=dict)  # FUNC name -> highest linkage
    variables: dict[str, list[int]] = field(default_factory=dict)  # VAR name -> type ids
    byte_order: str = "little"
    # By id, for readers of BPF objects (ingest.bpf.objects): the FUNCs and
    # VARs, and DATASEC name -> the entries it places.
    func_ids: dict[int, BtfDecl] = field(default_factory=dict)
    var_ids: dict[int, BtfDecl] = field(default_factory=dict)
    datasecs: dict[str, list[DatasecEntry]] = field(default_factory=dict)
    # The id range this blob defines (first_id > 1 for a split blob), its string
    # section and the offset that section starts at (the base's strings_end).
    first_id: int = 1
    last_id: int = 0
    strings: bytes = b"\0"
    strings_start: int = 0
    base: BtfInfo | None = None

    @property
    def strings_end(self) -> int:
        """The first string offset past this blob's strings (a split blob's start)."""
        return self.strings_start + len(self.strings)

    def string_at(self, off: int) -> str:
        """The string at offset `off` of this blob or its base; BadBtf if none."""
        if off < self.strings_start:
            assert self.base is not None
            return self.base.string_at(off)
        return _string_in(self.strings, off - self.strings_start, off)


def _string_in(section: bytes, rel: int, off: int) -> str:
    """The NUL-terminated string at `rel` in `section` (`off` names it in errors)."""
    if rel >= len(section):
        raise BadBtf(f"string offset {off} out of range")
    end = section.find(b"\0", rel)
    if end < 0:
        raise BadBtf(f"unterminated string at {off}")
    return section[rel:end].decode("utf-8", "replace")


class BtfHeader(NamedTuple):
    """struct btf_header, checked against the blob it heads."""

    byte_order: str  # "little" or "big"
    hdr_len: int
    type_off: int  # type_off and str_off count from the end of the header
    type_len: int
    str_off: int
    str_len: int

    @property
    def struct_order(self) -> str:
        """The struct module's byte order character, "<" or ">"."""
        return "<" if self.byte_order == "little" else ">"

    @property
    def types(self) -> slice:
        """Where the type section lies in the blob."""
        start = self.hdr_len + self.type_off
        return slice(start, start + self.type_len)

    @property
    def strings(self) -> slice:
        """Where the string section lies in the blob."""
        start = self.hdr_len + self.str_off
        return slice(start, start + self.str_len)


_QUALIFIERS = {F.KIND_CONST: "const", F.KIND_VOLATILE: "volatile", F.KIND_RESTRICT: "restrict"}
# Kinds whose ref/params are followed when printing a declaration (cycle check).
_DECLARATOR_KINDS = frozenset(("ptr", "const", "volatile", "restrict", "atomic", "typedef", "array", "func"))


def read_header(data: bytes, split: bool = False) -> BtfHeader:
    """The header of a BTF blob; raise BadBtf unless its type and string
    sections lie inside the blob and (unless `split`: a split blob's strings
    continue its base's) the strings start with the empty one."""
    if len(data) < F.HEADER_SIZE:
        raise BadBtf("truncated header")
    if data[:2] == b"\x9f\xeb":
        bo, order = "<", "little"
    elif data[:2] == b"\xeb\x9f":
        bo, order = ">", "big"
    else:
        raise BadBtf(f"bad magic {data[:2].hex()}")
    _magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        bo + F.HEADER_FMT, data, 0
    )
    if version != F.VERSION:
        raise BadBtf(f"unsupported version {version}")
    if hdr_len < F.HEADER_SIZE or hdr_len > len(data):
        raise BadBtf(f"bad header length {hdr_len}")
    header = BtfHeader(
        byte_order=order,
        hdr_len=hdr_len,
        type_off=type_off,
        type_len=type_len,
        str_off=str_off,
        str_len=str_len,
    )
    if header.types.stop > len(data) or header.strings.stop > len(data):
        raise BadBtf("type or string section outside the blob")
    if not split and (str_len == 0 or data[header.strings.start] != 0):
        raise BadBtf("string section must start with an empty string")
    return header


def string_section(data: bytes) -> bytes:
    """The string section of a BTF blob; raise BadBtf on a bad header."""
    return data[read_header(data).strings]


def read_btf(data: bytes, base: BtfInfo | None = None) -> BtfInfo:
    """Parse a whole BTF blob, split over `base` when given (a module's .BTF
    over vmlinux's); raise BadBtf on anything malformed."""
    # The graph is ~10^5 acyclic objects: pausing the cycle collector while
    # building it saves about a third of the time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _read(bytes(data), base)
    finally:
        if enabled:
            gc.enable()


def _read(data: bytes, base: BtfInfo | None) -> BtfInfo:
    """read_btf's body, run with the cycle collector paused."""
    header = read_header(data, split=base is not None)
    if base is not None and header.byte_order != base.byte_order:
        raise BadBtf(f"split BTF is {header.byte_order}-endian over a {base.byte_order}-endian base")
    blob = _Blob(data, header, base)
    last = _read_types(blob)
    graph, func_ids, var_ids, first = blob.graph, blob.func_ids, blob.var_ids, blob.first
    _resolve_type_tags(graph, blob.type_tags, first)
    funcs: dict[str, list[int]] = {}
    for ftid, func in func_ids.items():
        if graph[func.type_id].kind != "func":
            raise BadBtf(f"FUNC {ftid} ({func.name}) does not refer to a FUNC_PROTO")
        funcs.setdefault(func.name, []).append(func.type_id)
    _check_acyclic(graph, first)
    return BtfInfo(
        graph=graph,
        funcs=funcs,
        decl_tags=_decl_tags(blob.tags, {**func_ids, **var_ids}),
        func_linkage=blob.linkage,
        variables=blob.variables,
        byte_order=header.byte_order,
        func_ids=func_ids,
        var_ids=var_ids,
        datasecs=blob.datasecs,
        first_id=first,
        last_id=last,
        strings=data[header.strings],
        strings_start=blob.sbase,
        base=base,
    )


class _Blob:
    """One blob's type section as it is read: its bytes, its strings, and the
    tables the kind readers fill (a split blob's over its base's)."""

    __slots__ = (
        "data", "base", "bo", "tstart", "tend", "sstart", "send", "str_len", "sbase", "strings",
        "vfmt", "head", "u32", "i32", "arr", "void", "first", "graph", "func_ids", "var_ids",
        "linkage", "variables", "datasecs", "tags", "type_tags", "maxref",
    )  # fmt: skip

    def __init__(self, data: bytes, header: BtfHeader, base: BtfInfo | None) -> None:
        self.data, self.base = data, base
        bo = self.bo = header.struct_order
        self.tstart, self.tend = header.types.start, header.types.stop
        self.sstart, self.send, self.str_len = header.strings.start, header.strings.stop, header.str_len
        # A split blob's offsets below `sbase` name the base's strings.
        self.sbase = base.strings_end if base is not None else 0
        self.strings: dict[int, str] = {0: ""}
        # One Struct per count, written "<count><code>": its size does not grow with the
        # count (code * count kept ~32 bytes per item: 2 250 counts of a crafted blob took 510 MB).
        self.vfmt: dict[tuple[int, str], struct.Struct] = {}
        self.head = struct.Struct(bo + F.TYPE_FMT).unpack_from
        self.u32 = struct.Struct(bo + "I").unpack_from
        self.i32 = struct.Struct(bo + "i").unpack_from
        self.arr = struct.Struct(bo + "III").unpack_from
        self.graph: TypeGraph
        self.func_ids: dict[int, BtfDecl]  # named FUNCs, in id order
        self.var_ids: dict[int, BtfDecl]  # named VARs
        if base is None:
            self.void = CType("void")
            self.graph, self.func_ids, self.var_ids, self.first = {0: self.void}, {}, {}, 1
        else:
            self.void = base.graph[0]
            self.graph = Overlay(base.graph)
            self.func_ids, self.var_ids = Overlay(base.func_ids), Overlay(base.var_ids)
            self.first = base.last_id + 1
        self.linkage: dict[str, int] = {}  # FUNC name -> highest linkage
        self.variables: dict[str, list[int]] = {}
        self.datasecs: dict[str, list[DatasecEntry]] = {}
        self.tags: list[tuple[str, int, int]] = []  # (tag, target id, component_idx)
        self.type_tags: list[tuple[int, int]] = []  # (TYPE_TAG id, ref)
        self.maxref = 0  # the highest id a member, parameter, element or entry refers to

    def name_at(self, off: int) -> str:
        """The string at offset `off` (the base's below `sbase`), remembered."""
        s = self.strings.get(off)
        if s is None:
            if off < self.sbase:
                assert self.base is not None
                s = self.strings[off] = self.base.string_at(off)
                return s
            if off - self.sbase >= self.str_len:
                raise BadBtf(f"string offset {off} out of range")
            p = self.sstart + off - self.sbase
            e = self.data.find(b"\0", p, self.send)
            if e < 0:
                raise BadBtf(f"unterminated string at {off}")
            s = self.strings[off] = self.data[p:e].decode("utf-8", "replace")
        return s

    def vals(self, n: int, code: str, pos: int) -> tuple:
        """`n` values of struct code `code` at `pos`."""
        s = self.vfmt.get((n, code))
        if s is None:
            s = self.vfmt[(n, code)] = struct.Struct(f"{self.bo}{n}{code}")
        return s.unpack_from(self.data, pos)

    def check(self, tid: int, end: int, what: str = "truncated") -> None:
        """BadBtf ("type <tid> <what>") unless type `tid`'s record ends inside the type section."""
        if end > self.tend:
            raise BadBtf(f"type {tid} {what}")

    def refer(self, ids: tuple[int, ...]) -> None:
        """Note the ids a record's members, parameters or entries refer to (checked at the end)."""
        m = max(ids)
        if m > self.maxref:
            self.maxref = m


def _read_types(blob: _Blob) -> int:
    """Read every type record into the blob's tables, each by its kind's reader; the last id."""
    data, tend, head, strings, name_at = blob.data, blob.tend, blob.head, blob.strings, blob.name_at
    readers = _KIND_READERS
    pos, tid, maxref = blob.tstart, blob.first, 0
    while pos < tend:
        if pos + 12 > tend:
            raise BadBtf(f"type {tid} truncated")
        name_off, info, st = head(data, pos)
        kind = (info >> F.KIND_SHIFT) & F.KIND_MASK
        name = strings.get(name_off)
        if name is None:
            name = name_at(name_off)
        read, refers = readers[kind]
        if read is None:
            raise BadBtf(f"type {tid} has unknown kind {kind}")
        pos = read(blob, tid, name or None, info, st, pos + 12)
        if refers and st > maxref:
            maxref = st
        tid += 1
    last = tid - 1
    maxref = max(maxref, blob.maxref)
    if maxref > last:
        raise BadBtf(f"type id {maxref} out of range (last is {last})")
    return last


# Each kind reader takes (blob, id, name, info, size_or_type, position past the
# 12-byte header), sets blob.graph[id] and returns the position past the record.


def _read_struct(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    """STRUCT or UNION: its members (bitfield size << 24 | bit offset when kind_flag is set)."""
    vlen = info & F.VLEN_MASK
    need = 12 * vlen
    blob.check(tid, pos + need, "members outside the type section")
    members: list[Member] = []
    if vlen:
        v = blob.vals(3 * vlen, "I", pos)
        pos += need
        blob.refer(v[1::3])
        strings, name_at, add = blob.strings, blob.name_at, members.append
        if info >> F.KIND_FLAG_SHIFT:
            for i in range(0, 3 * vlen, 3):
                mn = strings.get(v[i])
                if mn is None:
                    mn = name_at(v[i])
                off = v[i + 2]
                # positional: hot loop (every bitfield member of vmlinux's BTF; keywords cost ~4x per Member)
                add(Member(mn or None, v[i + 1], off & 0xFFFFFF, off >> 24))
        else:
            for i in range(0, 3 * vlen, 3):
                mn = strings.get(v[i])
                if mn is None:
                    mn = name_at(v[i])
                add(Member(mn or None, v[i + 1], v[i + 2]))
    kind = "struct" if (info >> F.KIND_SHIFT) & F.KIND_MASK == F.KIND_STRUCT else "union"
    blob.graph[tid] = CType(kind, name, size=st, members=members)
    return pos


def _read_ptr(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    blob.graph[tid] = CType("ptr", ref=st)
    return pos


def _read_qualifier(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    """CONST, VOLATILE or RESTRICT."""
    blob.graph[tid] = CType(_QUALIFIERS[(info >> F.KIND_SHIFT) & F.KIND_MASK], ref=st)
    return pos


def _read_typedef(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    blob.graph[tid] = CType("typedef", name, ref=st)
    return pos


def _read_func_proto(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    """FUNC_PROTO: its parameters; a last one without name and type makes it variadic."""
    vlen = info & F.VLEN_MASK
    params: list[tuple[str | None, int]] = []
    variadic = False
    if vlen:
        need = 8 * vlen
        if pos + need > blob.tend:
            raise BadBtf(f"type {tid} params outside the type section")
        v = blob.vals(2 * vlen, "I", pos)
        pos += need
        m = max(v[1::2])
        if m > blob.maxref:
            blob.maxref = m
        strings, name_at = blob.strings, blob.name_at
        for i in range(0, 2 * vlen, 2):
            pn = strings.get(v[i])
            if pn is None:
                pn = name_at(v[i])
            params.append((pn or None, v[i + 1]))
        if params[-1] == (None, 0):
            params.pop()
            variadic = True
    blob.graph[tid] = CType("func", ref=st, params=params, variadic=variadic)
    return pos


def _read_func(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    """FUNC: a void node; a named one is kept by id with its linkage (vlen)."""
    blob.graph[tid] = blob.void
    if name:  # gcc 12 -gbtf also emits nameless FUNCs for function pointers
        vlen = info & F.VLEN_MASK
        blob.func_ids[tid] = BtfDecl(name, vlen, st)
        linkage = blob.linkage
        if linkage.get(name, -1) < vlen:
            linkage[name] = vlen
    return pos


def _read_int(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    blob.check(tid, pos + 4)
    blob.graph[tid] = CType("int", name, size=st)
    return pos + 4


def _read_array(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    blob.check(tid, pos + 12)
    elem, index, nelems = blob.arr(blob.data, pos)
    # BTF cannot tell "x[0]" from "x[]": 0 elements is printed as flexible.
    blob.graph[tid] = CType("array", ref=elem, count=nelems or None)
    blob.refer((elem, index))
    return pos + 12


def _read_enum(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    """ENUM (32-bit values) or ENUM64; kind_flag: the values are signed."""
    vlen = info & F.VLEN_MASK
    is64 = (info >> F.KIND_SHIFT) & F.KIND_MASK == F.KIND_ENUM64
    need = (12 if is64 else 8) * vlen
    blob.check(tid, pos + need, "values outside the type section")
    signed = bool(info >> F.KIND_FLAG_SHIFT)
    data, name_at = blob.data, blob.name_at
    enumerators: list[tuple[str, int]] = []
    if not is64:
        u32, value = blob.u32, blob.i32 if signed else blob.u32
        for p in range(pos, pos + need, 8):
            enumerators.append((name_at(u32(data, p)[0]), value(data, p + 4)[0]))
    else:
        for p in range(pos, pos + need, 12):
            n_off, lo, hi = blob.arr(data, p)
            val = hi << 32 | lo
            if signed and val >= 1 << 63:
                val -= 1 << 64
            enumerators.append((name_at(n_off), val))
    if vlen:
        blob.graph[tid] = CType("enum", name, size=st, enumerators=enumerators)
    else:  # BTF spells a forward enum as an enum without values
        blob.graph[tid] = CType("fwd", name, size=st, fwd_kind="enum")
    return pos + need


def _read_fwd(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    blob.graph[tid] = CType("fwd", name, fwd_kind="union" if info >> F.KIND_FLAG_SHIFT else "struct")
    return pos


def _read_float(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    blob.graph[tid] = CType("float", name, size=st)
    return pos


def _read_var(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    """VAR: a void node; a named one is kept by id and by name with its linkage."""
    blob.check(tid, pos + 4)
    var_link = blob.u32(blob.data, pos)[0]
    blob.graph[tid] = blob.void
    if name:
        blob.variables.setdefault(name, []).append(st)
        blob.var_ids[tid] = BtfDecl(name, var_link, st)
    return pos + 4


def _read_datasec(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    """DATASEC: a void node; a named one keeps the entries it places."""
    vlen = info & F.VLEN_MASK
    need = 12 * vlen
    blob.check(tid, pos + need, "entries outside the type section")
    if vlen:
        entries = blob.vals(3 * vlen, "I", pos)
        blob.refer(entries[0::3])
        if name:
            blob.datasecs.setdefault(name, []).extend(
                map(DatasecEntry._make, zip(entries[0::3], entries[1::3], entries[2::3]))
            )
    blob.graph[tid] = blob.void
    return pos + need


def _read_decl_tag(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    """DECL_TAG: a void node; the tag is kept with its target and component."""
    blob.check(tid, pos + 4)
    component = blob.i32(blob.data, pos)[0]
    blob.graph[tid] = blob.void
    blob.tags.append((name or "", st, component))
    return pos + 4


def _read_type_tag(blob: _Blob, tid: int, name: str | None, info: int, st: int, pos: int) -> int:
    blob.graph[tid] = blob.void  # replaced by its target (_resolve_type_tags)
    blob.type_tags.append((tid, st))
    return pos


_KindReader = Callable[[_Blob, int, str | None, int, int, int], int]
_BY_KIND: dict[int, tuple[_KindReader, bool]] = {  # kind -> (reader, size_or_type is a type id)
    F.KIND_INT: (_read_int, False),
    F.KIND_PTR: (_read_ptr, True),
    F.KIND_ARRAY: (_read_array, False),
    F.KIND_STRUCT: (_read_struct, False),
    F.KIND_UNION: (_read_struct, False),
    F.KIND_ENUM: (_read_enum, False),
    F.KIND_FWD: (_read_fwd, False),
    F.KIND_TYPEDEF: (_read_typedef, True),
    F.KIND_VOLATILE: (_read_qualifier, True),
    F.KIND_CONST: (_read_qualifier, True),
    F.KIND_RESTRICT: (_read_qualifier, True),
    F.KIND_FUNC: (_read_func, True),
    F.KIND_FUNC_PROTO: (_read_func_proto, True),
    F.KIND_VAR: (_read_var, True),
    F.KIND_DATASEC: (_read_datasec, False),
    F.KIND_FLOAT: (_read_float, False),
    F.KIND_DECL_TAG: (_read_decl_tag, True),
    F.KIND_TYPE_TAG: (_read_type_tag, True),
    F.KIND_ENUM64: (_read_enum, False),
}
# Indexed by kind (a list: the loop's fastest lookup); None for the kinds BTF does not define.
_KIND_READERS: list[tuple[_KindReader | None, bool]] = [
    _BY_KIND.get(k, (None, False)) for k in range(F.KIND_MASK + 1)
]


def _resolve_type_tags(graph: TypeGraph, type_tags: list[tuple[int, int]], first: int) -> None:
    """Make each TYPE_TAG id an alias of the node its tag chain ends at; in a
    split graph, an alias of a base node (id below `first`) is hidden so that
    iterating the graph lists only the blob's own types."""
    refs = dict(type_tags)
    for tid, _ in type_tags:
        seen = 0
        target = tid
        while target in refs:
            target = refs[target]
            seen += 1
            if seen > len(refs):
                raise BadBtf(f"TYPE_TAG {tid} loops")
        if target < first and isinstance(graph, Overlay):
            del graph[tid]
            graph.hidden[tid] = graph[target]
        else:
            graph[tid] = graph[target]


def _decl_tags(tags: list[tuple[str, int, int]], decls: dict[int, BtfDecl]) -> dict[str, list[str]]:
    """tag value -> names of the FUNCs/VARs tagged as a whole (component_idx -1);
    `tags` holds (tag, target id, component_idx)."""
    out: dict[str, list[str]] = {}
    for tag, target, component in tags:
        decl = decls.get(target)
        if component == -1 and decl is not None:
            out.setdefault(tag, []).append(decl.name)
    return out


def _check_acyclic(graph: TypeGraph, first: int) -> None:
    """Reject a declarator cycle (e.g. a PTR to itself): printing would not end.
    Ids below `first` (void, a split blob's base) are known to end."""
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done
    kinds = _DECLARATOR_KINDS
    for root, node in graph.items():
        if node.kind not in kinds or root in state:
            continue
        stack = [(root, iter(_edges(node)))]
        state[root] = 1
        while stack:
            tid, it = stack[-1]
            for nxt in it:
                if nxt < first:
                    continue
                st = state.get(nxt)
                if st == 2:
                    continue
                if st == 1:
                    raise BadBtf(f"type {nxt} refers to itself")
                child = graph[nxt]
                if child.kind not in kinds:
                    state[nxt] = 2
                    continue
                state[nxt] = 1
                stack.append((nxt, iter(_edges(child))))
                break
            else:
                state[tid] = 2
                stack.pop()


def _edges(node: CType) -> list[int]:
    """The ids a declarator node refers to."""
    if node.params:
        return [node.ref] + [t for _, t in node.params]
    return [node.ref]
