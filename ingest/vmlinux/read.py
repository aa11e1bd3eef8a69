"""The first stage: read a kernel image -- a vmlinux with DWARF, BTF and a
symbol table, or a raw BTF blob with a kallsyms file -- into VmlinuxFacts."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from elftools.common.exceptions import ELFError

from ingest.errors import IngestError
from ingest.model import BuildInfo, Layout, Prototype, Symbol, Typedef, Variable
from ingest.readers import btf as btf_reader
from ingest.readers import dwarf, elf, kallsyms
from ingest.readers.btf import BtfInfo
from ingest.readers.dwarf_forms import BadDwarf
from ingest.readers.vaddr import ImageMemory
from ingest.types.cdecl import LayoutBuilder
from ingest.vmlinux.prototypes import btf_prototypes
from ingest.vmlinux.units import UnitPart, unit_part


@dataclass(slots=True)
class Identity:
    """Identity fields given on the command line; None means "read from the image"."""

    distro: str | None = None
    version: str | None = None
    release: str | None = None
    arch: str | None = None
    flavor: str | None = None
    label: str | None = None


@dataclass(slots=True)
class VmlinuxFacts:
    """What the image itself says: what the modules are read against, and what
    the join and the surfaces take from vmlinux."""

    info: BuildInfo
    symbols: list[Symbol]
    btf: BtfInfo | None
    types: LayoutBuilder | None  # its BTF's layouts (a module's split BTF builds on them)
    btf_prototypes: dict[str, Prototype]  # by function name
    layouts: list[Layout]  # named types: BTF's, else DWARF's
    part: UnitPart  # instances and caller edges of its compile units, DWARF's prototypes
    memory: ImageMemory | None  # None: a raw BTF blob
    data_symbols: list[Variable] | None = None  # a blob's, from its kallsyms file
    typedefs: list[Typedef] | None = None  # named typedefs: BTF's, else DWARF's

    @property
    def prototyped(self) -> frozenset[str]:
        """The names vmlinux gives a prototype: a module's DWARF need not print them."""
        return frozenset(self.btf_prototypes) | frozenset(self.part.prototypes)


@contextmanager
def opened(path: Path) -> Iterator[BinaryIO]:
    """The image file, open for the stages that read it (vmlinux's memory is read until the surfaces)."""
    if path.is_dir():
        raise IngestError(f"{path}: is a directory, not a kernel image")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise IngestError(f"{path}: cannot open ({exc.strerror})") from None
    with f:
        try:
            yield f
        except OSError as exc:  # /proc/self/mem opens, and its first read fails (EIO)
            raise IngestError(f"{exc.filename or path}: cannot read ({exc.strerror or exc})") from None


def read_vmlinux(
    path: Path,
    f: BinaryIO,
    identity: Identity,
    kallsyms_path: Path | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VmlinuxFacts:
    """Read the open image `f` at `path`: a vmlinux (ELF), or a raw BTF blob
    with symbols from `kallsyms_path`."""
    if f.read(2) in (b"\x9f\xeb", b"\xeb\x9f"):
        f.seek(0)
        return _read_btf_blob(path, f.read(), identity, kallsyms_path)
    f.seek(0)
    return _read_elf_file(path, f, identity, jobs, progress)


def is_btf_blob(path: Path) -> bool:
    """Whether `path` starts with BTF's magic (in either byte order)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) in (b"\x9f\xeb", b"\xeb\x9f")
    except OSError:
        return False


def _read_elf_file(
    path: Path, f: BinaryIO, identity: Identity, jobs: int | None, progress: Callable[[int, int], None] | None
) -> VmlinuxFacts:
    try:
        image = elf.open_image(f)
    except elf.NotAnElf:
        raise IngestError(
            f"{path}: not an ELF file (expected a vmlinux with debug info, or a raw BTF blob)"
        ) from None
    except elf.ImageError as exc:
        raise IngestError(f"{path}: {exc}") from None
    try:
        return _read_elf(path, image, identity, jobs, progress)
    except (elf.ImageError, BadDwarf, btf_reader.BadBtf) as exc:
        raise IngestError(f"{path}: {exc}") from None
    except (ELFError, struct.error, IndexError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: corrupt ELF data ({exc.__class__.__name__}: {exc})") from None


def _read_elf(
    path: Path,
    image: elf.Image,
    identity: Identity,
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
) -> VmlinuxFacts:
    symbols = elf.function_symbols(image)
    btf_data = image.section(".BTF")
    btf = btf_reader.read_btf(btf_data) if btf_data else None
    has_dwarf = image.has(".debug_info")
    if not has_dwarf and btf is None:
        what = "no symbol table either (stripped)" if not symbols else "only a symbol table"
        raise IngestError(
            f"{path}: no debug info: neither DWARF (.debug_info) nor .BTF, {what}; "
            "use the -dbg/debuginfo package's vmlinux"
        )
    walk = _start_walk(image, btf, jobs, progress) if has_dwarf else None
    # While the walk runs in worker processes: the image's identity, then BTF's types and prototypes.
    banner = elf.banner(image)
    release = identity.release or elf.release(banner)
    sha = _sha256(path)
    info = BuildInfo(
        build_id=elf.build_id(image) or sha,
        distro=identity.distro,
        version=identity.version or elf.package_version(banner),
        release=release,
        arch=identity.arch or image.arch,
        flavor=identity.flavor or flavor_of(release),
        compiler=elf.compiler(image),
        dwarf_version=walk.version if walk else None,
        has_dwarf=has_dwarf,
        has_btf=btf is not None,
        has_symtab=bool(symbols),
        file_size=path.stat().st_size,
        sha256=sha,
        path=str(path),
    )
    return _with_types(info, symbols, btf, walk.units if walk else [], ImageMemory(image))


def _with_types(
    info: BuildInfo,
    symbols: list[Symbol],
    btf: BtfInfo | None,
    units: Iterable[dwarf.UnitFacts],
    memory: ImageMemory | None,
    data_symbols: list[Variable] | None = None,
) -> VmlinuxFacts:
    """The facts, once BTF's types and prototypes are printed and then the
    units (which may still be walking in worker processes) are taken in."""
    types = LayoutBuilder(btf.graph) if btf else None
    protos = btf_prototypes(btf, types.texts) if btf and types else {}
    btf_layouts = types.named() if types else None
    part = unit_part(units, symbols)
    return VmlinuxFacts(
        info=info,
        symbols=symbols,
        btf=btf,
        types=types,
        btf_prototypes=protos,
        layouts=part.layouts if btf_layouts is None else btf_layouts,
        part=part,
        memory=memory,
        data_symbols=data_symbols,
        typedefs=types.typedefs() if types else part.typedefs,
    )


@dataclass(slots=True)
class _Walk:
    units: Iterable[dwarf.UnitFacts]  # produced by the worker processes, in unit order
    version: int | None  # the highest DWARF version of the units


def _start_walk(
    image: elf.Image, btf: BtfInfo | None, jobs: int | None, progress: Callable[[int, int], None] | None
) -> _Walk:
    """Start the DWARF walk of every compile unit in worker processes."""
    sections = {n: data for n in dwarf.DEBUG_SECTIONS if (data := image.section(n)) is not None}
    try:
        config = dwarf.WalkConfig(frozenset(btf.funcs) if btf else frozenset(), btf is None)
        if image.elf["e_type"] == "ET_REL":  # an object file: pyelftools relocates its sections
            unit_list = dwarf.units(image.elf.get_dwarf_info(relocate_dwarf_sections=True), image.endian)
        else:  # not pyelftools' DWARFInfo: its units and copies of the sections (~270 MB for
            # 6.12) form reference cycles, which stay while the collector is off (collector_off)
            unit_list = dwarf.units_from_bytes(sections[".debug_info"], image.endian)
        version = max((u.shape.version for u in unit_list), default=None)
        return _Walk(dwarf.walk(unit_list, sections, image.endian, config, jobs, progress), version)
    except BadDwarf:
        raise
    except Exception as exc:  # pyelftools raises many kinds on corrupt headers
        raise BadDwarf(f"corrupt DWARF ({exc.__class__.__name__}: {exc})") from None


def _read_btf_blob(path: Path, data: bytes, identity: Identity, kallsyms_path: Path | None) -> VmlinuxFacts:
    try:
        btf = btf_reader.read_btf(data)
    except btf_reader.BadBtf as exc:
        raise IngestError(f"{path}: bad BTF ({exc})") from None
    symbols = kallsyms.read_functions(kallsyms_path) if kallsyms_path else []
    data_symbols = kallsyms.read_variables(kallsyms_path) if kallsyms_path else None
    release = identity.release or (kallsyms.release_from_map_name(kallsyms_path) if kallsyms_path else None)
    sha = hashlib.sha256(data).hexdigest()
    info = BuildInfo(
        build_id=sha,
        distro=identity.distro,
        version=identity.version,
        release=release,
        arch=identity.arch,
        flavor=identity.flavor or flavor_of(release),
        compiler=None,
        dwarf_version=None,
        has_dwarf=False,
        has_btf=True,
        has_symtab=bool(symbols),
        file_size=len(data),
        sha256=sha,
        path=str(path),
    )
    return _with_types(info, symbols, btf, [], None, data_symbols)


def flavor_of(release: str | None) -> str | None:
    """Debian/Ubuntu releases end in the flavor: 6.1.0-56-cloud-amd64 -> cloud-amd64."""
    if not release:
        return None
    parts = release.split("-")
    tail = [p for p in parts[1:] if not p[:1].isdigit()]
    return "-".join(tail) or None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()
