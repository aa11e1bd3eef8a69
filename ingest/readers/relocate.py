"""A relocatable object (ET_REL: a loadable module) as a linked image: every
SHF_ALLOC section gets an address (the kernel module loader's order), and a
section's contents are its relocations applied, vectorised with numpy.

Symbol value S = layout address of the symbol's section + st_value (0 for
non-allocated sections, so DWARF offsets into .debug_str etc. stay offsets).
Undefined symbols (imports from vmlinux or other modules) read as 0 in .debug_*
sections; elsewhere their relocations are left undone and counted as skipped.
Relocation types with no data meaning (calls, GOT, TLS, ...) are skipped too;
in .debug_* sections unknown types are counted per type, never fatal.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from ingest.errors import BadModule

SHT_NOBITS, SHT_SYMTAB, SHT_RELA, SHT_REL = 8, 2, 4, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_COMPRESSED = 0x1, 0x2, 0x4, 0x800
SHF_RO_AFTER_INIT = 0x00200000  # set by the loader on these sections (kernel/module/main.c)
_RO_AFTER_INIT = {".data..ro_after_init", "__jump_table"}
SHN_ABS, SHN_LORESERVE = 0xFFF1, 0xFF00
PAGE = 4096

# Relocation kinds.
_NONE, _ABS, _PCREL, _ADD, _SUB, _SET, _SET6, _SUB6, _ULEB_SET, _ULEB_SUB = range(10)
_TYPE_CAP = 1024  # types are counted by bincount below this (every arch's types are)

#: e_machine -> {type: (width in bytes, kind)}; every other type is skipped (or
#: counted as unknown in debug sections).
RECIPES: dict[int, dict[int, tuple[int, int]]] = {
    62: {  # EM_X86_64, RELA
        0: (0, _NONE),
        1: (8, _ABS),  # R_X86_64_64
        2: (4, _PCREL),  # PC32
        4: (4, _PCREL),  # PLT32
        10: (4, _ABS),  # 32
        11: (4, _ABS),  # 32S
        24: (8, _PCREL),  # PC64
    },
    3: {0: (0, _NONE), 1: (4, _ABS), 2: (4, _PCREL)},  # EM_386, REL: R_386_32, PC32
    40: {0: (0, _NONE), 2: (4, _ABS), 3: (4, _PCREL)},  # EM_ARM, REL: R_ARM_ABS32, REL32
    183: {  # EM_AARCH64, RELA
        0: (0, _NONE),
        257: (8, _ABS),  # ABS64
        258: (4, _ABS),  # ABS32
        259: (2, _ABS),  # ABS16
        260: (8, _PCREL),  # PREL64
        261: (4, _PCREL),  # PREL32
        262: (2, _PCREL),  # PREL16
    },
    22: {  # EM_S390, RELA (big-endian)
        0: (0, _NONE),
        1: (1, _ABS),  # R_390_8
        3: (2, _ABS),  # 16
        4: (4, _ABS),  # 32
        5: (4, _PCREL),  # PC32
        22: (8, _ABS),  # 64
        23: (8, _PCREL),  # PC64
    },
    21: {  # EM_PPC64, RELA
        0: (0, _NONE),
        1: (4, _ABS),  # ADDR32
        26: (4, _PCREL),  # REL32
        38: (8, _ABS),  # ADDR64
        44: (8, _PCREL),  # REL64
    },
    243: {  # EM_RISCV, RELA
        0: (0, _NONE),
        1: (4, _ABS),  # R_RISCV_32
        2: (8, _ABS),  # 64
        33: (1, _ADD),
        34: (2, _ADD),
        35: (4, _ADD),
        36: (8, _ADD),
        37: (1, _SUB),
        38: (2, _SUB),
        39: (4, _SUB),
        40: (8, _SUB),
        43: (0, _NONE),  # ALIGN (the bytes are already the aligned code)
        51: (0, _NONE),  # RELAX
        52: (1, _SUB6),
        53: (1, _SET6),
        54: (1, _SET),
        55: (2, _SET),
        56: (4, _SET),
        57: (4, _PCREL),  # 32_PCREL
        60: (0, _ULEB_SET),  # SET_ULEB128
        61: (0, _ULEB_SUB),  # SUB_ULEB128
    },
}
_REL_ADDEND_IN_PLACE = {3, 40}  # i386 and ARM use REL: the addend is the word in place


class Header(NamedTuple):
    """One section header."""

    number: int  # section header index
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


@dataclass(slots=True)
class RelocationCounts:
    """What relocating the sections read so far did."""

    applied: int = 0
    skipped: int = 0  # undefined symbol outside .debug_*, or a type with no data meaning
    unknown: dict[int, int] = field(default_factory=dict)  # type -> count, in .debug_* sections


class LaidSection(NamedTuple):
    """An allocated section's place in the layout."""

    name: str
    number: int  # section header index
    address: int
    size: int


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise BadModule(message)


class Relocatable:
    """An ET_REL ELF in memory, laid out from `base`, sections relocated on first read.

    `layout=False` puts every section at 0 (the file's own sh_addr), as
    pyelftools' relocation does."""

    def __init__(self, data: bytes, base: int = 0, layout: bool = True, where: str = "") -> None:
        try:
            self._open(data, base, layout)
        except BadModule as exc:
            raise BadModule(f"{where}: {exc}" if where else str(exc)) from None
        except (struct.error, ValueError) as exc:
            raise BadModule(
                f"{where}: corrupt ELF headers ({exc})" if where else f"corrupt ELF headers ({exc})"
            ) from None
        self.where = where

    def _open(self, data: bytes, base: int, layout: bool) -> None:
        _check(data[:4] == b"\x7fELF", "not an ELF file")
        _check(len(data) >= 52, f"truncated: {len(data)} bytes, shorter than an ELF header")
        _check(data[4] in (1, 2) and data[5] in (1, 2), "corrupt ELF identification bytes")
        self.data = data
        self.wide = data[4] == 2
        self.endian: Literal["little", "big"] = "little" if data[5] == 1 else "big"
        e = self._e = "<" if data[5] == 1 else ">"
        if self.wide:
            _check(len(data) >= 64, "truncated ELF header")
            e_type, self.machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, shstrndx = struct.unpack_from(
                e + "HHIQQQIHHHHHH", data, 16
            )
        else:
            e_type, self.machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, shstrndx = struct.unpack_from(
                e + "HHIIIIIHHHHHH", data, 16
            )
        _check(e_type == 1, f"not a relocatable object (ELF type {e_type}, modules are ET_REL)")
        _check(shentsize == (64 if self.wide else 40), f"section header size {shentsize} is not the ELF's")
        _check(
            0 < shnum and shoff + shnum * shentsize <= len(data),
            f"truncated: section headers end at byte {shoff + shnum * shentsize}, file has {len(data)}",
        )
        fmt = e + ("IIQQQQIIQQ" if self.wide else "IIIIIIIIII")
        raw = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
        _check(shstrndx < shnum, "section name table index out of range")
        names = self._strtab(raw[shstrndx])
        self.headers: list[Header] = []
        for i, (name, typ, flags, _, offset, size, link, info, align, entsize) in enumerate(raw):
            if typ != SHT_NOBITS:
                _check(offset + size <= len(data), f"truncated: section {i} ends past the end of the file")
            end = names.find(b"\0", name)
            _check(end >= 0, "section name outside the section name table")
            text = names[name:end].decode("utf-8", "replace")
            self.headers.append(Header(i, text, typ, flags, offset, size, link, info, align, entsize))
        self.by_name: dict[str, int] = {}
        for h in self.headers:
            self.by_name.setdefault(h.name, h.number)
        if not 0 <= base < 1 << (64 if self.wide else 32):
            raise ValueError(
                f"layout base 0x{base:x} is outside a {64 if self.wide else 32}-bit address space"
            )
        self.sections = self._layout(base) if layout else []
        self.bases = np.zeros(shnum, dtype=np.uint64)
        for s in self.sections:
            self.bases[s.number] = s.address
        self.rels: dict[int, list[Header]] = {}
        for h in self.headers:
            if h.type in (SHT_REL, SHT_RELA) and 0 < h.info < shnum:
                self.rels.setdefault(h.info, []).append(h)
        self.counts = RelocationCounts()
        self._cache: dict[int, bytes] = {}
        self._symbols: tuple[Any, np.ndarray, np.ndarray] | None = None

    # -- layout -------------------------------------------------------------

    def _layout(self, base: int) -> list[LaidSection]:
        """Core then init (`.init*`) sections, each as text, rodata, ro-after-init,
        data groups (the loader's masks), every group starting on a page."""
        masks = [
            (SHF_EXECINSTR | SHF_ALLOC, 0),
            (SHF_ALLOC, SHF_WRITE),
            (SHF_RO_AFTER_INIT | SHF_ALLOC, 0),
            (SHF_WRITE | SHF_ALLOC, 0),
        ]
        out: list[LaidSection] = []
        placed: set[int] = set()
        at = base
        for init in (False, True):
            for want, unwanted in masks:
                for h in self.headers:
                    flags = h.flags | (SHF_RO_AFTER_INIT if h.name in _RO_AFTER_INIT else 0)
                    if (
                        h.number in placed
                        or flags & want != want
                        or flags & unwanted
                        or h.name.startswith(".init") != init
                    ):
                        continue
                    align = max(h.addralign, 1)
                    at = (at + align - 1) // align * align
                    out.append(LaidSection(h.name, h.number, at, h.size))
                    placed.add(h.number)
                    at += h.size
                at = (at + PAGE - 1) // PAGE * PAGE
        return out

    def address(self, index: int) -> int:
        """The layout address of section `index` (0 when not allocated)."""
        return int(self.bases[index]) if 0 <= index < len(self.bases) else 0

    # -- symbols ------------------------------------------------------------

    def symtab(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """(.symtab entries as a numpy record array, S per symbol, defined per symbol)."""
        if self._symbols is not None:
            return self._symbols
        e = self._e
        dtype = (
            np.dtype([("name", e + "u4"), ("info", "u1"), ("other", "u1"), ("shndx", e + "u2"),
                      ("value", e + "u8"), ("size", e + "u8")])
            if self.wide
            else np.dtype([("name", e + "u4"), ("value", e + "u4"), ("size", e + "u4"), ("info", "u1"),
                           ("other", "u1"), ("shndx", e + "u2")])
        )  # fmt: skip
        sym = next((h for h in self.headers if h.type == SHT_SYMTAB), None)
        if sym is None:
            entries = np.zeros(0, dtype=dtype)
        else:
            entries = np.frombuffer(self.data, dtype, sym.size // dtype.itemsize, sym.offset)
        shndx = entries["shndx"].astype(np.int64)
        in_section = (shndx > 0) & (shndx < len(self.headers))
        defined = in_section | (shndx == SHN_ABS)
        value = entries["value"].astype(np.uint64)
        s = np.where(in_section, self.bases[np.where(in_section, shndx, 0)] + value, value)
        s[~defined] = 0
        if len(defined):
            defined[0] = True  # the null symbol: S = 0 (r_sym 0 is an absolute value)
        self._symbols = (entries, s, defined)
        return self._symbols

    def strtab(self, header: Header) -> bytes:
        """The string table a SYMTAB header links to."""
        _check(0 < header.link < len(self.headers), f"symbol table {header.name} links no string table")
        return self._strtab(self.headers[header.link])

    def _strtab(self, raw: Any) -> bytes:
        if isinstance(raw, Header):
            return self.data[raw.offset : raw.offset + raw.size]
        _, _, _, _, offset, size, *_ = raw
        return self.data[offset : offset + size]

    # -- contents -----------------------------------------------------------

    def section(self, name: str) -> bytes | None:
        """A section's contents relocated; None when absent or NOBITS."""
        index = self.by_name.get(name)
        return None if index is None else self.contents(index)

    def contents(self, index: int) -> bytes | None:
        h = self.headers[index]
        if h.type == SHT_NOBITS or h.number == 0:
            return None
        out = self._cache.get(index)
        if out is not None:
            return out
        # One copy of the section at a time besides the file (amdgpu's DWARF is hundreds of MB):
        # a view, not a slice, of the file; the decompressed or sliced bytes go once relocated.
        raw: bytes | memoryview = memoryview(self.data)[h.offset : h.offset + h.size]
        if h.flags & SHF_COMPRESSED:
            from ingest.readers.elf import decompress

            raw = decompress(self.endian, 64 if self.wide else 32, h.name, bytes(raw))
        rels = self.rels.get(index)
        if rels:
            buf = bytearray(raw)
            del raw
            try:
                for rel in rels:
                    self._apply(buf, h, rel)
            except BadModule as exc:
                raise BadModule(f"{self.where}: {exc}" if self.where else str(exc)) from None
            out = bytes(buf)
        else:
            out = bytes(raw)
        self._cache[index] = out
        return out

    def relocate(self, names: Iterable[str]) -> dict[str, bytes]:
        """Relocated contents of the named sections that exist."""
        return {n: data for n in names if (data := self.section(n)) is not None}

    def _entries(self, rel: Header) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(r_offset, symbol index, type, addend or None) of one REL/RELA section, as uint64 arrays."""
        word = 8 if self.wide else 4
        cols = 3 if rel.type == SHT_RELA else 2
        _check(
            rel.size % (word * cols) == 0 and rel.entsize in (0, word * cols),
            f"corrupt relocation section {rel.name}: size {rel.size} is not a whole number of entries",
        )
        n = rel.size // (word * cols)
        raw = np.frombuffer(self.data, f"{self._e}u{word}", n * cols, rel.offset).reshape(n, cols)
        if self.wide:
            info = raw[:, 1]
            sym, typ = info >> np.uint64(32), info & np.uint64(0xFFFFFFFF)
        else:
            info = raw[:, 1].astype(np.uint64)
            sym, typ = info >> np.uint64(8), info & np.uint64(0xFF)
        addend = raw[:, 2].astype(np.uint64) if cols == 3 else None
        return raw[:, 0], sym, typ, addend

    def _apply(self, buf: bytearray, target: Header, rel: Header) -> None:
        """Apply one relocation section to `buf`, the target section's bytes: one
        vectorised pass per relocation type present."""
        debug = target.name.startswith(".debug_")
        recipes = RECIPES.get(self.machine, {})
        off, sym, typ, addend = self._entries(rel)
        if not len(off):
            return
        _, svals, defined = self.symtab()
        _check(
            int(sym.max()) < len(svals),
            f"corrupt relocation section {rel.name}: symbol index {int(sym.max())} out of range",
        )
        counts = self.counts
        present = np.bincount(np.minimum(typ, np.uint64(_TYPE_CAP)).astype(np.intp), minlength=_TYPE_CAP + 1)
        types = np.flatnonzero(present).tolist()
        n = len(buf)
        base = np.uint64(self.address(target.number))
        views: dict[int, np.ndarray] = {}
        pending: dict[int, list[tuple[np.ndarray, int, np.ndarray]]] = {}  # width -> ADD/SUB/SET parts
        uleb: list[tuple[np.ndarray, int, np.ndarray]] = []
        for t in types:
            recipe = recipes.get(t) if t < _TYPE_CAP else None
            if recipe is None:
                if not debug:
                    counts.skipped += int(present[t])
                elif t < _TYPE_CAP:
                    counts.unknown[t] = counts.unknown.get(t, 0) + int(present[t])
                else:  # a huge type number: corrupt, but still only counted
                    for big in typ[typ >= np.uint64(_TYPE_CAP)].tolist():
                        counts.unknown[big] = counts.unknown.get(big, 0) + 1
                continue
            w, kind = recipe
            if kind == _NONE:
                continue
            if len(types) == 1:
                o, si, a = off, sym, addend
            else:
                m = typ == np.uint64(t)
                o, si, a = off[m], sym[m], (addend[m] if addend is not None else None)
            if not debug:  # imports stay as they are outside .debug_*
                d = defined[si]
                if not d.all():
                    counts.skipped += int(len(d) - d.sum())
                    o, si, a = o[d], si[d], (a[d] if a is not None else None)
                if not len(o):
                    continue
            _check(
                int(o.max()) + max(w, 1) <= n,
                f"corrupt relocation section {rel.name}: an offset lies past the end of {target.name}",
            )
            counts.applied += len(o)
            if kind in (_ULEB_SET, _ULEB_SUB):
                uleb.append((o, kind, svals[si] + (a if a is not None else np.uint64(0))))
                continue
            view = views.get(w)
            if view is None:
                view = views[w] = np.ndarray((n - w + 1,), f"{self._e}u{w}", buf, 0, (1,))
            v = svals[si] + (a if a is not None else view[o])  # REL: the addend is the word in place
            if kind == _PCREL:
                v -= base + o
            if kind in (_ABS, _PCREL):
                view[o] = v
            else:
                pending.setdefault(w, []).append((o, kind, v))
        for w, parts in pending.items():
            self._accumulate(views[w], parts, w)
        if uleb:
            self._uleb(buf, uleb, rel)

    @staticmethod
    def _accumulate(view: np.ndarray, parts: list[tuple[np.ndarray, int, np.ndarray]], w: int) -> None:
        """RISC-V style ADD/SUB/SET pairs at one place: the result is the SET value
        (else the word in place) plus the ADDs minus the SUBs."""
        o = np.concatenate([p[0] for p in parts])
        k = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
        v = np.concatenate([p[2] for p in parts])
        places, inverse = np.unique(o, return_inverse=True)
        six = np.zeros(len(places), dtype=bool)
        six[inverse[(k == _SET6) | (k == _SUB6)]] = True
        start = view[places].astype(np.uint64)
        old = start.copy()
        sets = (k == _SET) | (k == _SET6)
        start[inverse[sets]] = v[sets]
        delta = np.where((k == _SUB) | (k == _SUB6), np.uint64(0) - v, np.where(sets, np.uint64(0), v))
        np.add.at(start, inverse, delta)
        if six.any():  # 6-bit fields: the low bits of a byte (DW_CFA_advance_loc)
            start[six] = (old[six] & np.uint64(0xC0)) | (start[six] & np.uint64(0x3F))
        view[places] = start & np.uint64((1 << (8 * w)) - 1 if w < 8 else 0xFFFFFFFFFFFFFFFF)

    @staticmethod
    def _uleb(buf: bytearray, parts: list[tuple[np.ndarray, int, np.ndarray]], rel: Header) -> None:
        """SET_ULEB128/SUB_ULEB128 pairs, rewritten in the ULEB128's own length
        (rare: only newer binutils emit them; done one by one)."""
        values: dict[int, int] = {}
        for o, k, v in parts:
            for at, x in zip(o.tolist(), v.tolist()):
                values[at] = x if k == _ULEB_SET else values.get(at, 0) - x
        for at, x in values.items():
            end = at
            while end < len(buf) and buf[end] & 0x80:
                end += 1
            _check(end < len(buf), f"corrupt relocation section {rel.name}: ULEB128 runs off the section")
            x &= (1 << (7 * (end - at + 1))) - 1
            for i in range(at, end + 1):
                buf[i] = (x & 0x7F) | (0x80 if i < end else 0)
                x >>= 7
