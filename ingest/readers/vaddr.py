"""Read a vmlinux's initialised data as the kernel sees it at its link address:
bytes, integers and pointers at virtual addresses, with the image's dynamic
RELATIVE relocations applied (arm64 and ppc64 link with
`--no-apply-dynamic-relocs`, so those words are zero in the file), plus every
symbol by name and by address.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from elftools.elf.sections import Section

from ingest.readers.elf import BINDINGS, Image

if TYPE_CHECKING:
    from ingest.readers.relocate import Relocatable

# R_<arch>_RELATIVE per e_machine: the word becomes the addend (plus the load bias, 0 here).
_RELATIVE = {
    "EM_X86_64": 8,
    "EM_AARCH64": 1027,
    "EM_PPC64": 22,
    "EM_RISCV": 3,
    "EM_S390": 12,
    "EM_386": 8,
    "EM_ARM": 23,
}


@dataclass(frozen=True, slots=True)
class ElfSymbol:
    """Any named symbol: functions, objects and linker-defined markers."""

    name: str
    address: int
    size: int
    kind: str  # "func", "object", "notype", ...
    section: str | None
    binding: str = "STB_GLOBAL"  # readers.elf.BINDINGS names


_KINDS = {0: "notype", 1: "object", 2: "func", 3: "section", 4: "file", 6: "tls"}


class ImageMemory:
    """Virtual-address reads over one opened image."""

    def __init__(self, image: Image):
        self.image = image
        self.endian = image.endian
        self.pointer_size = image.elf_class // 8
        self._e = "<" if image.endian == "little" else ">"
        self._ptr_fmt = self._e + ("Q" if self.pointer_size == 8 else "I")
        self._sections: list[tuple[int, int, Section | str]]
        if image.linked is not None:  # a module: its layout (the first section may sit at 0)
            self._sections = [
                (s.address, s.address + s.size, s.name)
                for s in image.linked.sections
                if image.linked.headers[s.number].type != 8  # SHT_NOBITS
            ]
        else:
            self._sections = sorted(
                (
                    (sec["sh_addr"], sec["sh_addr"] + sec["sh_size"], sec)
                    for sec in image.elf.iter_sections()
                    if sec["sh_addr"] and sec["sh_flags"] & 2 and sec["sh_type"] != "SHT_NOBITS"
                ),  # SHF_ALLOC
                key=lambda s: (s[0], s[1]),
            )  # never compare Section objects (sections sharing an address)
        self._starts = [s[0] for s in self._sections]
        self._cache: dict[str, bytes] = {}
        self.relocations = self._relative_relocations()
        self.symbols = self._read_symbols()
        self.by_name: dict[str, ElfSymbol] = {}
        for sym in self.symbols:
            self.by_name.setdefault(sym.name, sym)
        funcs = sorted((s for s in self.symbols if s.kind == "func"), key=lambda s: s.address)
        self._funcs = funcs
        self._func_starts = [s.address for s in funcs]
        self._at: dict[int, list[ElfSymbol]] | None = None

    # -- raw bytes ------------------------------------------------------------

    def _section_bytes(self, sec: Section | str) -> bytes:
        if isinstance(sec, str):  # a module's section, relocated
            return self.image.section(sec) or b""
        data = self._cache.get(sec.name)
        if data is None:
            data = self._cache[sec.name] = sec.data()
        return data

    def read(self, address: int, size: int) -> bytes | None:
        """`size` initialised bytes at `address`, or None when not all in one section."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        start, end, sec = self._sections[i]
        if address + size > end:
            return None
        offset = address - start
        return self._section_bytes(sec)[offset : offset + size]

    def uint(self, address: int, size: int) -> int | None:
        raw = self.read(address, size)
        return None if raw is None else int.from_bytes(raw, self.endian)

    def pointer(self, address: int) -> int | None:
        """The pointer stored at `address`, relocated; None outside the image."""
        if address in self.relocations:
            return self.relocations[address]
        raw = self.read(address, self.pointer_size)
        return None if raw is None else struct.unpack(self._ptr_fmt, raw)[0]

    def pointers(self, start: int, end: int) -> list[int]:
        """The pointer array [start, end), relocated."""
        size = self.pointer_size
        end -= (end - start) % size
        raw = self.read(start, end - start) if end > start else b""
        if raw is None:  # spans sections: word by word
            return [p for a in range(start, end, size) if (p := self.pointer(a)) is not None]
        out = [v for (v,) in struct.iter_unpack(self._ptr_fmt, raw)]
        relocs = self.relocations
        if relocs:
            for i, a in enumerate(range(start, end, size)):
                r = relocs.get(a)
                if r is not None:
                    out[i] = r
        return out

    def cstring(self, address: int, limit: int = 4096) -> str | None:
        """The NUL-terminated string at `address` (None for NULL or outside the image)."""
        if not address:
            return None
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0 or address >= self._sections[i][1]:
            return None
        start, _, sec = self._sections[i]
        data = self._section_bytes(sec)
        offset = address - start
        end = data.find(b"\0", offset, offset + limit)
        if end < 0:
            return None
        return data[offset:end].decode("utf-8", "replace")

    # -- symbols --------------------------------------------------------------

    def symbol(self, name: str) -> ElfSymbol | None:
        return self.by_name.get(name)

    def range(self, start: str, stop: str) -> tuple[int, int] | None:
        """Addresses of a pair of linker markers, e.g. __start_mcount_loc/__stop_mcount_loc."""
        a, b = self.by_name.get(start), self.by_name.get(stop)
        if a is None or b is None or b.address < a.address:
            return None
        return a.address, b.address

    def function_at(self, address: int) -> ElfSymbol | None:
        """The function symbol whose [address, address+size) holds `address`
        (aliases at one address: the first in the table)."""
        i = bisect.bisect_right(self._func_starts, address) - 1
        for sym in reversed(self._funcs[max(0, i - 8) : i + 1]):  # a few aliases share a start
            if sym.address <= address < sym.address + max(sym.size, 1):
                return sym
        return None

    def symbols_at(self, address: int) -> list[ElfSymbol]:
        """Every symbol starting exactly at `address`, functions first."""
        if self._at is None:
            self._at = {}
            for sym in sorted(self.symbols, key=lambda s: s.kind != "func"):
                self._at.setdefault(sym.address, []).append(sym)
        return self._at.get(address, [])

    # -- readers --------------------------------------------------------------

    def _read_symbols(self) -> list[ElfSymbol]:
        if self.image.linked is not None:
            return _linked_symbols(self.image.linked)
        symtab = self.image.elf.get_section_by_name(".symtab")
        if symtab is None or symtab["sh_type"] != "SHT_SYMTAB":
            return []
        strings = self.image.elf.get_section(symtab["sh_link"]).data()
        data = symtab.data()
        if self.image.elf_class == 64:
            fmt, entsize = self._e + "IBBHQQ", 24
        else:
            fmt, entsize = self._e + "IIIBBH", 16
        names = {i: s.name for i, s in enumerate(self.image.elf.iter_sections())}
        out = []
        for entry in struct.iter_unpack(fmt, data[: len(data) - len(data) % entsize]):
            if self.image.elf_class == 64:
                name_off, info, _, shndx, value, size = entry
            else:
                name_off, value, size, info, _, shndx = entry
            kind = _KINDS.get(info & 0xF, "other")
            if kind in ("section", "file") or not name_off:
                continue
            end = strings.find(b"\0", name_off)
            name = strings[name_off:end].decode("utf-8", "replace")
            binding = BINDINGS.get(info >> 4, str(info >> 4))
            out.append(ElfSymbol(name, value, size, kind, names.get(shndx), binding))
        return out

    def _relative_relocations(self) -> dict[int, int]:
        """address -> value for the allocated (runtime) RELA sections' RELATIVE entries."""
        rtype = _RELATIVE.get(self.image.elf["e_machine"])
        out: dict[int, int] = {}
        if rtype is None or self.image.linked is not None:  # a module's are applied in its sections
            return out
        wide = self.image.elf_class == 64
        fmt = self._e + ("QQq" if wide else "IIi")
        size = 24 if wide else 12
        for sec in self.image.elf.iter_sections():
            if sec["sh_type"] != "SHT_RELA" or not sec["sh_flags"] & 2:
                continue
            data = sec.data()
            for offset, info, addend in struct.iter_unpack(fmt, data[: len(data) - len(data) % size]):
                if (info & 0xFFFFFFFF if wide else info & 0xFF) == rtype:
                    out[offset] = addend & ((1 << (8 * self.pointer_size)) - 1)
        return out


#: Sections the module loader finds by name (find_sec: the first SHF_ALLOC
#: section of that name), and the linker markers that bound the same tables in
#: vmlinux (the surface readers look for those). A module's ftrace call sites
#: are in one of the first two, whichever its build's FTRACE_CALLSITE_SECTION
#: names (ingest.surfaces.attach.callsite_table); vmlinux's linker script puts
#: both into the mcount_loc range.
MODULE_TABLES = {
    "__mcount_loc": "mcount_loc",
    "__patchable_function_entries": "patchable_function_entries",
    "_ftrace_events": "ftrace_events",
    "_kprobe_blacklist": "kprobe_blacklist",
}


def _linked_symbols(obj: Relocatable) -> list[ElfSymbol]:
    """A module's named defined symbols at their layout addresses (imports are
    not in it), plus __start_X/__stop_X markers around its MODULE_TABLES."""
    markers = []
    found: set[str] = set()
    for laid in sorted(obj.sections, key=lambda laid: laid.number):  # find_sec's order
        table = MODULE_TABLES.get(laid.name)
        if table is not None and table not in found:
            found.add(table)
            for marker, address in (("__start_", laid.address), ("__stop_", laid.address + laid.size)):
                markers.append(ElfSymbol(marker + table, address, 0, "notype", laid.name, "STB_LOCAL"))
    entries, values, _ = obj.symtab()
    if not len(entries):
        return markers
    strings = obj.strtab(next(h for h in obj.headers if h.type == 2))  # SHT_SYMTAB
    out = []
    for name_off, info, index, value, size in zip(
        entries["name"].tolist(),
        entries["info"].tolist(),
        entries["shndx"].tolist(),
        values.tolist(),
        entries["size"].tolist(),
    ):
        kind = _KINDS.get(info & 0xF, "other")
        if kind in ("section", "file") or not name_off or index == 0:
            continue
        end = strings.find(b"\0", name_off)
        name = strings[name_off:end].decode("utf-8", "replace")
        section = obj.headers[index].name if 0 < index < len(obj.headers) else None
        out.append(ElfSymbol(name, value, size, kind, section, BINDINGS.get(info >> 4, str(info >> 4))))
    return out + markers
