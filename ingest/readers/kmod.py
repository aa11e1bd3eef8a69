"""Loadable kernel modules: open a `.ko` (plain or xz/zstd/gzip-compressed),
list a module tree, read `.modinfo` and the name in `.gnu.linkonce.this_module`,
and give the module as an `elf.Image` whose sections come relocated and whose
addresses come from a layout (readers.relocate), so the vmlinux readers apply.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ingest.errors import BadModule, ImageError
from ingest.readers.elf import MACHINE_NUMBERS, Image, arch_of
from ingest.readers.relocate import LaidSection, Relocatable, RelocationCounts

SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
_MAGIC = {
    b"\x7fELF": "elf",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zst",
    b"\x1f\x8b": "gz",
}


def read_module(path: str | os.PathLike[str]) -> bytes:
    """The ELF bytes of a module file, decompressed by its magic (.ko, .ko.xz, .ko.zst, .ko.gz)."""
    with open(path, "rb") as f:
        raw = f.read()
    return decompress(raw, os.fspath(path))


def decompress(raw: bytes, where: str = "module") -> bytes:
    kind = next((k for magic, k in _MAGIC.items() if raw.startswith(magic)), None)
    try:
        if kind == "elf":
            return raw
        if kind == "xz":
            return lzma.decompress(raw)
        if kind == "gz":
            return gzip.decompress(raw)
        if kind == "zst":
            import zstandard

            return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    except (lzma.LZMAError, OSError, EOFError, zlib.error) as exc:
        raise BadModule(f"{where}: corrupt {kind} data ({exc})") from None
    except Exception as exc:  # zstandard.ZstdError is not importable without the module
        raise BadModule(f"{where}: corrupt {kind} data ({exc})") from None
    raise BadModule(f"{where}: unknown compression (not ELF, xz, zstd or gzip; starts {raw[:6].hex()})")


def list_modules(root: str | os.PathLike[str]) -> list[str]:
    """Relative paths of every module file under `root`, sorted. Symlinked
    directories are followed once each: a link back up the tree (a loop) is not
    walked again, where os.walk went 40 levels deep and read each module 40 times."""
    out = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        for name in files:
            if name.endswith(SUFFIXES):
                out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


@dataclass(frozen=True, slots=True)
class ModInfo:
    """`.modinfo`: key=value strings. `rest` holds every other key, all its values in order."""

    name: str | None
    license: str | None
    description: str | None
    depends: tuple[str, ...]
    vermagic: str | None
    rest: dict[str, tuple[str, ...]] = field(default_factory=dict)


def parse_modinfo(data: bytes) -> ModInfo:
    values: dict[str, list[str]] = {}
    for item in data.split(b"\0"):
        key, eq, value = item.decode("utf-8", "replace").partition("=")
        if eq:
            values.setdefault(key, []).append(value)
    first = {k: v[0] for k, v in values.items()}
    depends = tuple(d for d in first.get("depends", "").split(",") if d)
    main = ("name", "license", "description", "depends", "vermagic")
    return ModInfo(
        name=first.get("name"),
        license=first.get("license"),
        description=first.get("description"),
        depends=depends,
        vermagic=first.get("vermagic"),
        rest={k: tuple(v) for k, v in values.items() if k not in main},
    )


def this_module_name(obj: Relocatable) -> str | None:
    """`struct module`'s name in `.gnu.linkonce.this_module`.

    It has sat at a fixed place since 2.6: `enum module_state state; struct
    list_head list; char name[MODULE_NAME_LEN]` — so at 3 pointer sizes (the
    enum padded to a pointer), MODULE_NAME_LEN = 64 - pointer size."""
    data = obj.section(".gnu.linkonce.this_module")
    if data is None:
        return None
    ptr = 8 if obj.wide else 4
    raw = data[3 * ptr : 3 * ptr + 64 - ptr]
    name = raw.split(b"\0", 1)[0]
    return name.decode("utf-8", "replace") or None


class _LazyElf:
    """Stands for the pyelftools ELFFile, built only when something asks for it
    (its construction costs about 1 ms; a module's readers go through `linked`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._elf: ELFFile | None = None

    def _get(self) -> ELFFile:
        if self._elf is None:
            self._elf = ELFFile(io.BytesIO(self._data))
        return self._elf

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]


class Module(NamedTuple):
    """One opened module: the linked image, its modinfo and layout."""

    name: str | None  # .modinfo name=, else struct module's name, else the file name
    image: Image  # image.linked: sections relocated on first read, layout addresses
    info: ModInfo
    sections: list[LaidSection]  # the layout of every SHF_ALLOC section
    size: int  # bytes the layout spans (core and init)
    relocations: RelocationCounts  # live: grows as sections are read

    @property
    def linked(self) -> Relocatable:
        assert self.image.linked is not None
        return self.image.linked


def open_module(source: str | os.PathLike[str] | bytes, base: int = 0) -> Module:
    """Open a module file (or its bytes) as a linked image laid out from `base`.

    Raises BadModule with a one-line reason."""
    where = "module" if isinstance(source, bytes) else os.fspath(source)
    data = decompress(source, where) if isinstance(source, bytes) else read_module(source)
    try:
        obj = Relocatable(data, base, where=where)
        machine = MACHINE_NUMBERS.get(obj.machine, f"e_machine {obj.machine}")
        elf_class = 64 if obj.wide else 32
        endian = obj.endian
        image = Image(
            elf=cast(ELFFile, _LazyElf(data)),
            endian=endian,
            arch=arch_of(machine, elf_class, endian),
            elf_class=elf_class,
            linked=obj,
        )
        info = parse_modinfo(obj.section(".modinfo") or b"")
        name = info.name or this_module_name(obj)
    except (ImageError, ELFError, ValueError) as exc:
        raise BadModule(f"{where}: {exc}") from None
    if name is None and not isinstance(source, bytes):
        name = os.path.basename(where).split(".ko")[0].replace("-", "_")
    end = max((s.address + s.size for s in obj.sections), default=base)
    return Module(name, image, info, obj.sections, end - base, obj.counts)
