"""ELF: sections (decompressed), build-id, release string, compiler, arch and
the function symbol table, via pyelftools plus struct for the hot loops."""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Literal

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, Section

from ingest.errors import ImageError, NotAnElf, UnsupportedMachine
from ingest.model import Symbol

if TYPE_CHECKING:
    from ingest.readers.relocate import Relocatable

#: e_machine -> Debian architecture name (64-bit variants chosen by ELF class).
MACHINES = {
    "EM_X86_64": "amd64",
    "EM_386": "i386",
    "EM_AARCH64": "arm64",
    "EM_ARM": "armhf",
    "EM_PPC64": "ppc64el",
    "EM_PPC": "powerpc",
    "EM_RISCV": "riscv64",
    "EM_S390": "s390x",
    "EM_MIPS": "mips64el",
    "EM_LOONGARCH": "loong64",
}
#: e_machine numbers of MACHINES, for readers that parse headers themselves.
MACHINE_NUMBERS = {
    62: "EM_X86_64",
    3: "EM_386",
    183: "EM_AARCH64",
    40: "EM_ARM",
    21: "EM_PPC64",
    20: "EM_PPC",
    243: "EM_RISCV",
    22: "EM_S390",
    8: "EM_MIPS",
    258: "EM_LOONGARCH",
}
BINDINGS = {0: "STB_LOCAL", 1: "STB_GLOBAL", 2: "STB_WEAK", 10: "STB_GNU_UNIQUE"}
STT_FUNC = 2
SHF_COMPRESSED = 0x800
_BANNER = re.compile(rb"Linux version \S+ [^\0\n]*")


#: Byte order, as int.from_bytes() names it.
Endian = Literal["little", "big"]


@dataclass(slots=True)
class Image:
    """An opened ELF image and the facts read straight from its headers."""

    elf: ELFFile
    endian: Endian
    arch: str
    elf_class: int  # 32 or 64
    #: A relocatable object (a module) after layout: sections come relocated,
    #: addresses from the layout (readers.kmod.open_module). None for vmlinux.
    linked: Relocatable | None = None

    def section(self, name: str) -> bytes | None:
        """A section's contents, decompressed (and relocated for a module); None when absent."""
        if self.linked is not None:
            return self.linked.section(name)
        sec = self.elf.get_section_by_name(name)
        if sec is None or sec["sh_type"] == "SHT_NOBITS":
            return None
        raw = sec.data() if not sec["sh_flags"] & SHF_COMPRESSED else _raw(self, sec)
        if sec["sh_flags"] & SHF_COMPRESSED:
            return decompress(self.endian, self.elf_class, name, raw)
        return raw

    def has(self, name: str) -> bool:
        if self.linked is not None:
            return name in self.linked.by_name
        return self.elf.get_section_by_name(name) is not None


def _raw(image: Image, sec: Section) -> bytes:
    stream = image.elf.stream
    stream.seek(sec["sh_offset"])
    data = stream.read(sec["sh_size"])
    if len(data) != sec["sh_size"]:
        raise ImageError(f"section {sec.name} runs past the end of the file (truncated?)")
    return data


def decompress(endian: str, elf_class: int, name: str, raw: bytes) -> bytes:
    """SHF_COMPRESSED section: Elf_Chdr then zlib (1) or zstd (2) data."""
    e = "<" if endian == "little" else ">"
    if elf_class == 64:
        ctype, _, size, _ = struct.unpack_from(e + "IIQQ", raw)
        body = raw[24:]
    else:
        ctype, size, _ = struct.unpack_from(e + "III", raw)
        body = raw[12:]
    try:
        if ctype == 1:
            out = zlib.decompress(body)
        elif ctype == 2:
            import zstandard

            out = zstandard.ZstdDecompressor().decompress(body, max_output_size=size)
        else:
            raise ImageError(f"section {name} uses unknown compression type {ctype}")
    except (zlib.error, ValueError) as exc:
        raise ImageError(f"section {name} does not decompress ({exc})") from None
    if len(out) != size:
        raise ImageError(f"section {name} decompresses to {len(out)} bytes, header says {size}")
    return out


def open_image(stream: BinaryIO) -> Image:
    """Open an ELF image; raises NotAnElf / UnsupportedMachine / ImageError."""
    head = stream.read(4)
    stream.seek(0)
    if head != b"\x7fELF":
        raise NotAnElf("not an ELF file")
    stream.seek(0, 2)
    file_size = stream.tell()
    stream.seek(0)
    try:
        elf = ELFFile(stream)
        machine = elf["e_machine"]
        n_sections = elf.num_sections()
        headers_end = elf["e_shoff"] + n_sections * elf["e_shentsize"]
        if headers_end > file_size:
            raise ImageError(f"truncated: section headers end at byte {headers_end}, file has {file_size}")
        for sec in elf.iter_sections():
            end = sec["sh_offset"] + sec["sh_size"]
            if sec["sh_type"] != "SHT_NOBITS" and end > file_size:
                raise ImageError(f"truncated: section {sec.name} ends at byte {end}, file has {file_size}")
    except (ELFError, struct.error, ValueError, UnicodeDecodeError, OSError, OverflowError) as exc:
        # OSError/OverflowError: pyelftools seeks to an offset the header gives (e.g. EINVAL past 2**43)
        raise ImageError(f"unreadable ELF headers ({exc})") from None
    if machine not in MACHINES:
        raise UnsupportedMachine(f"unsupported machine {machine}")
    if n_sections == 0:
        raise ImageError("ELF has no section headers")
    return image_of(elf)


def image_of(elf: ELFFile) -> Image:
    """The Image of an ELFFile whose headers were checked."""
    endian: Endian = "little" if elf.little_endian else "big"
    return Image(elf, endian, arch_of(elf["e_machine"], elf.elfclass, endian), elf.elfclass)


def arch_of(machine: str, elf_class: int, endian: Endian) -> str:
    """The Debian architecture name of an e_machine name ("EM_X86_64"), class and byte order."""
    arch = MACHINES.get(machine)
    if arch is None:
        raise UnsupportedMachine(f"unsupported machine {machine}")
    if arch == "ppc64el" and endian == "big":
        arch = "ppc64"
    if arch == "riscv64" and elf_class == 32:
        arch = "riscv32"
    if arch == "s390x" and elf_class == 32:
        arch = "s390"
    if arch == "amd64" and elf_class == 32:
        arch = "x32"
    return arch


def build_id(image: Image) -> str | None:
    """The GNU build-id note as hex."""
    for sec in image.elf.iter_sections():
        if not isinstance(sec, NoteSection):  # pyelftools' class of every SHT_NOTE section
            continue
        try:
            for note in sec.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":  # Xen notes reuse type 3
                    return note["n_desc"]
        except (ELFError, struct.error, UnicodeDecodeError):
            continue
    return None


def compiler(image: Image) -> str | None:
    """The first compiler string in .comment."""
    data = image.section(".comment")
    if not data:
        return None
    first = data.split(b"\0")[0] or (data.split(b"\0") + [b""])[1]
    return first.decode("utf-8", "replace").strip() or None


def banner(image: Image) -> str | None:
    """The `linux_banner` string ("Linux version 6.1.0-56-amd64 (...) #1 SMP ... Debian 6.1.192-2 ...").

    Found by scanning .rodata: resolving the symbol through pyelftools would
    index all ~200 000 symbols first. `linux_proc_banner` ("%s version %s")
    does not match the pattern."""
    data = image.section(".rodata")
    if not data:
        return None
    m = _BANNER.search(data)
    return m.group(0).decode("utf-8", "replace") if m else None


def release(banner_text: str | None) -> str | None:
    """The kernel release from the banner."""
    m = re.match(r"Linux version (\S+)", banner_text or "")
    return m.group(1) if m else None


def package_version(banner_text: str | None) -> str | None:
    """The distribution package version a banner names, e.g. "Debian 6.1.192-2" -> "6.1.192-2"."""
    # Debian's banners may have no build number: "... 2.44) # SMP Debian 6.12.113-1 (...)".
    m = re.search(r"#\d*\s.*?(?:Debian|Ubuntu) (\d[\w.+~:-]*)", banner_text or "")
    return m.group(1) if m else None


def split_symbol(name: str) -> tuple[str, tuple[str, ...]]:
    """`foo.isra.0.cold` -> ("foo", ("isra", "cold")): stem and non-numeric suffixes."""
    stem, _, rest = name.partition(".")
    if not rest:
        return name, ()
    return stem, tuple(part for part in rest.split(".") if part and not part.isdigit())


def function_symbols(image: Image) -> list[Symbol]:
    """Every STT_FUNC symbol except `__pfx_*` padding, in table order (a module's at
    their layout addresses)."""
    if image.linked is not None:
        return _linked_function_symbols(image.linked)
    symtab = image.elf.get_section_by_name(".symtab")
    if symtab is None or symtab["sh_type"] != "SHT_SYMTAB":
        return []
    strings = image.elf.get_section(symtab["sh_link"]).data()
    data = symtab.data()
    e = "<" if image.endian == "little" else ">"
    if image.elf_class == 64:
        fmt, entsize = e + "IBBHQQ", 24
    else:
        fmt, entsize = e + "IIIBBH", 16
    section_names = {i: s.name for i, s in enumerate(image.elf.iter_sections())}
    out = []
    for entry in struct.iter_unpack(fmt, data[: len(data) - len(data) % entsize]):
        if image.elf_class == 64:
            name_off, info, _, shndx, value, size = entry
        else:
            name_off, value, size, info, _, shndx = entry
        sym = _function_symbol(strings, name_off, info, shndx, value, size, section_names.get(shndx))
        if sym is not None:
            out.append(sym)
    return out


def _linked_function_symbols(obj: Relocatable) -> list[Symbol]:
    entries, values, _ = obj.symtab()
    if not len(entries):
        return []
    strings = obj.strtab(next(h for h in obj.headers if h.type == 2))  # SHT_SYMTAB
    shndx = entries["shndx"].tolist()
    out = []
    for name_off, info, index, value, size in zip(
        entries["name"].tolist(), entries["info"].tolist(), shndx, values.tolist(), entries["size"].tolist()
    ):
        section = obj.headers[index].name if index < len(obj.headers) else None
        sym = _function_symbol(strings, name_off, info, index, value, size, section)
        if sym is not None:
            out.append(sym)
    return out


def _function_symbol(
    strings: bytes, name_off: int, info: int, shndx: int, value: int, size: int, section: str | None
) -> Symbol | None:
    """One symbol table entry as a Symbol; None unless a defined function (`__pfx_*` left out)."""
    if info & 0xF != STT_FUNC or shndx == 0:  # not a function, or undefined (SHN_UNDEF)
        return None
    end = strings.find(b"\0", name_off)
    if end < 0:
        raise ImageError("symbol name outside .strtab (corrupt symbol table)")
    name = strings[name_off:end].decode("utf-8", "replace")
    if name.startswith("__pfx_"):
        return None
    stem, suffixes = split_symbol(name)
    # positional: hot loop (every function symbol of vmlinux and each module; keywords cost ~4x per Symbol)
    return Symbol(name, stem, suffixes, value, size, BINDINGS.get(info >> 4, str(info >> 4)), section)
