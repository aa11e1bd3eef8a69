"""Ingest one image into the database: read everything first, then write one
transaction, so a bad input never touches the database."""

from __future__ import annotations

import gc
import hashlib
import os
import re
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError

from ingest import assemble, db, surfaces
from ingest import modules as module_reader
from ingest.assemble import ModuleFacts
from ingest.cdecl import LayoutBuilder
from ingest.errors import IngestError
from ingest.layouts import LayoutChannel
from ingest.model import Build, BuildInfo, Layout, Symbol, Variable
from ingest.queries import builds
from ingest.readers import btf as btf_reader
from ingest.readers import dwarf, elf
from ingest.readers.dwarf_forms import BadDwarf
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces import kconfig


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
class IngestResult:
    """What an ingest did, for the one-line summary."""

    name: str
    skipped: bool
    build: Build | None
    seconds: float
    bytes_added: int
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds


class _Phases(dict[str, float]):
    """Seconds per named phase: `with phases("walk"): ...`."""

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - start


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _flavor(release: str | None) -> str | None:
    """Debian/Ubuntu releases end in the flavor: 6.1.0-56-cloud-amd64 -> cloud-amd64."""
    if not release:
        return None
    parts = release.split("-")
    tail = [p for p in parts[1:] if not p[:1].isdigit()]
    return "-".join(tail) or None


def read_image(
    path: Path,
    identity: Identity,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    kallsyms: Path | None = None,
    phases: _Phases | None = None,
    config: Path | None = None,
    modules: Path | None = None,
    module_progress: Callable[[int, int], None] | None = None,
) -> Build:
    """Read an image (vmlinux with DWARF/BTF/symtab, or a raw BTF blob) and,
    when given, the package's kernel config and the tree of its loadable
    `modules` (docs/concepts.md#modules) into a Build."""
    options = _read_config(config) if config else {}
    if modules is not None and not modules.is_dir():
        raise IngestError(f"--modules {modules}: not a directory (give the tree of .ko files, or none)")
    build = _read_input(
        path,
        identity,
        jobs,
        progress,
        kallsyms,
        phases if phases is not None else _Phases(),
        _ModuleTree(modules, module_progress) if modules is not None else None,
    )
    build.config = options
    return build


def _read_config(path: Path) -> dict[str, str]:
    try:
        return kconfig.read_config(path)
    except kconfig.BadConfig as exc:
        raise IngestError(str(exc)) from None


def _read_input(
    path: Path,
    identity: Identity,
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
    kallsyms: Path | None,
    phases: _Phases,
    modules: _ModuleTree | None = None,
) -> Build:
    if path.is_dir():
        raise IngestError(f"{path}: is a directory, not a kernel image")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise IngestError(f"{path}: cannot open ({exc.strerror})") from None
    with f:
        try:
            head = f.read(4)
        except OSError as exc:
            raise IngestError(f"{path}: cannot read ({exc.strerror})") from None
        f.seek(0)
        if head[:2] in (b"\x9f\xeb", b"\xeb\x9f"):
            if modules is not None:
                raise IngestError(
                    f"{path}: a raw BTF blob has no modules to read with it; leave out --modules"
                )
            return _read_btf_only(path, f.read(), identity, kallsyms)
        try:
            image = elf.open_image(f)
        except elf.NotAnElf:
            raise IngestError(
                f"{path}: not an ELF file (expected a vmlinux with debug info, or a raw BTF blob)"
            ) from None
        except elf.ImageError as exc:
            raise IngestError(f"{path}: {exc}") from None
        try:
            return _read_elf(path, image, identity, jobs, progress, phases, modules)
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
    phases: _Phases,
    modules: _ModuleTree | None = None,
) -> Build:
    with phases("symbols+btf"):
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
    units: Iterable[dwarf.UnitFacts] = []
    dwarf_version = None
    if has_dwarf:
        with phases("read sections"):
            sections = {n: data for n in dwarf.DEBUG_SECTIONS if (data := image.section(n)) is not None}
        try:
            dwarf_info = image.elf.get_dwarf_info(relocate_dwarf_sections=image.elf["e_type"] == "ET_REL")
            config = dwarf.WalkConfig(frozenset(btf.funcs) if btf else frozenset(), btf is None)
            unit_list = dwarf.units(dwarf_info, image.endian)
            del dwarf_info  # pyelftools' view of the sections holds ~200 MB: free it before the walk
            dwarf_version = max((u.shape.version for u in unit_list), default=None)
            # The walk runs in worker processes while assemble() prints BTF types here.
            units = dwarf.walk(unit_list, sections, image.endian, config, jobs, progress)
        except BadDwarf:
            raise
        except Exception as exc:  # pyelftools raises many kinds on corrupt headers
            raise BadDwarf(f"corrupt DWARF ({exc.__class__.__name__}: {exc})") from None
    banner = elf.banner(image)
    release = identity.release or elf.release(banner)
    build_id = elf.build_id(image)
    with phases("sha256"):
        sha = _sha256(path)
    info = BuildInfo(
        build_id=build_id or sha,
        distro=identity.distro,
        version=identity.version or elf.package_version(banner),
        release=release,
        arch=identity.arch or image.arch,
        flavor=identity.flavor or _flavor(release),
        compiler=elf.compiler(image),
        dwarf_version=dwarf_version,
        has_dwarf=has_dwarf,
        has_btf=btf is not None,
        has_symtab=bool(symbols),
        file_size=path.stat().st_size,
        sha256=sha,
        path=str(path),
    )
    read_modules = None
    if modules is not None:
        tree = modules

        def read_modules(
            layouts: list[Layout], types: LayoutBuilder | None, prototyped: frozenset[str]
        ) -> Iterator[ModuleFacts]:
            context = module_reader.TreeContext(
                release=release,
                arch=info.arch or "",
                btf=btf,
                layouts=module_reader.event_layouts(layouts, btf),
                types=types,
                channel=LayoutChannel(types.built() if types else []),
                prototyped=prototyped,
            )
            return module_reader.read_tree(tree.path, context, jobs, tree.progress)

    with phases("dwarf walk + assemble" + (" + modules" if modules is not None else "")):
        build = assemble.assemble(info, units, symbols, btf, read_modules)
    with phases("surfaces"):
        surfaces.add_surfaces(build, ImageMemory(image), btf)
    return build


@contextmanager
def _collector_off() -> Iterator[None]:
    """The cyclic garbage collector off while a build is read and stored: it
    makes millions of acyclic records, which the collector's full passes would
    scan again and again (seconds each, through assembly, surfaces and the
    database write); what it frees comes back when the build is done."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(frozen=True, slots=True)
class _ModuleTree:
    path: Path
    progress: Callable[[int, int], None] | None


def _read_btf_only(path: Path, data: bytes, identity: Identity, kallsyms: Path | None) -> Build:
    try:
        btf = btf_reader.read_btf(data)
    except btf_reader.BadBtf as exc:
        raise IngestError(f"{path}: bad BTF ({exc})") from None
    symbols = read_kallsyms(kallsyms) if kallsyms else []
    data_symbols = read_kallsyms_variables(kallsyms) if kallsyms else None
    release = identity.release or (release_from_map_name(kallsyms) if kallsyms else None)
    sha = hashlib.sha256(data).hexdigest()
    info = BuildInfo(
        build_id=sha,
        distro=identity.distro,
        version=identity.version,
        release=release,
        arch=identity.arch,
        flavor=identity.flavor or _flavor(release),
        compiler=None,
        dwarf_version=None,
        has_dwarf=False,
        has_btf=True,
        has_symtab=bool(symbols),
        file_size=len(data),
        sha256=sha,
        path=str(path),
    )
    build = assemble.assemble(info, [], symbols, btf)
    surfaces.add_surfaces(build, None, btf, data_symbols)
    return build


def release_from_map_name(path: Path) -> str | None:
    """The release a System.map's file name carries (/boot/System.map-6.1.0-56-amd64);
    /proc/kallsyms and the map's contents never say it."""
    m = re.fullmatch(r"System\.map-(\d\S*)", path.name)
    return m.group(1) if m else None


def _kallsyms_entries(path: Path, types: str) -> Iterator[tuple[int, str, str]]:
    """(address, type letter, name) of the lines of a kallsyms/System.map whose type is in `types`."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read ({exc.strerror})") from None
    for line in lines:
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) != 1 or parts[1] not in types:
            continue
        try:
            address = int(parts[0], 16)
        except ValueError:
            raise IngestError(f"{path}: not a kallsyms/System.map file (bad line {line[:60]!r})") from None
        yield address, parts[1], parts[2]


def read_kallsyms_variables(path: Path) -> list[Variable]:
    """Data symbols (d, b, r, g, v types) of a kallsyms/System.map, as variables of unknown size."""
    return [
        Variable(
            name=name,
            address=address,
            size=None,
            binding="STB_LOCAL" if kind.islower() else "STB_GLOBAL",
            section=None,
            per_cpu=False,
            btf_var=False,
        )  # fmt: skip
        for address, kind, name in _kallsyms_entries(path, "dDbBrRgGvV")
    ]


def read_kallsyms(path: Path) -> list[Symbol]:
    """Function symbols from /proc/kallsyms or a System.map ("addr type name")."""
    out = []
    for address, kind, name in _kallsyms_entries(path, "tTwW"):
        if name.startswith("__pfx_"):
            continue
        stem, suffixes = elf.split_symbol(name)
        binding = "STB_GLOBAL" if kind == "T" else "STB_WEAK" if kind in "wW" else "STB_LOCAL"
        out.append(Symbol(name, stem, suffixes, address, 0, binding, ".text"))
    return out


def ingest(
    path: Path,
    db_path: Path,
    identity: Identity | None = None,
    replace: bool = False,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    kallsyms: Path | None = None,
    config: Path | None = None,
    modules: Path | None = None,
    module_progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Read `path` (and the kernel `config` and the `modules` tree, when
    given) and store it in `db_path` as one build (a no-op if already there)."""
    identity = identity or Identity()
    start = time.perf_counter()
    build_id = _quick_build_id(path)
    if build_id and db_path.exists() and not replace:
        conn = db.connect(db_path)
        try:
            found = builds.find_build(conn, build_id)
        finally:
            conn.close()
        if found:
            return IngestResult(found.name, True, None, time.perf_counter() - start, 0)
    phases = _Phases()
    with _collector_off():
        build = read_image(path, identity, jobs, progress, kallsyms, phases, config, modules, module_progress)
        before = db_path.stat().st_size if db_path.exists() else 0
        conn = db.connect(db_path)
        try:
            found = builds.find_build(conn, build.info.build_id)
            if found and not replace:
                return IngestResult(found.name, True, None, time.perf_counter() - start, 0)
            seconds = time.perf_counter() - start
            with phases("database write"):
                build_pk = db.store_build(conn, build, seconds, replace=replace, label=identity.label)
            name = builds.build_name(conn, build_pk)
            assert name is not None  # just stored
        finally:
            conn.close()
    return IngestResult(
        name, False, build, time.perf_counter() - start, os.path.getsize(db_path) - before, dict(phases)
    )


def _quick_build_id(path: Path) -> str | None:
    """The build-id without reading the whole image (None if unavailable)."""
    try:
        with open(path, "rb") as f:
            return elf.build_id(elf.open_image(f))
    except (OSError, elf.ImageError, Exception):
        return None
