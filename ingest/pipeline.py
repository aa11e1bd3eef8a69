"""Ingest one image into the database, in five stages, each taking and
returning typed records:

    read vmlinux    ingest.vmlinux.read      path -> VmlinuxFacts
    read modules    ingest.modules.tree      tree, VmlinuxFacts -> ModuleFacts, streamed
    join            ingest.join.build        VmlinuxFacts, ModuleFacts... -> Joined
    surfaces        ingest.surfaces          image, types, Joined's module events -> Surfaces
    store           ingest.db.store          Build -> one transaction

Everything is read before anything is written, so a bad input never touches the database.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ingest import db
from ingest.db import upgrades
from ingest.errors import IngestError
from ingest.join.build import Joined, join_build
from ingest.model import Build
from ingest.modules.tree import read_tree, tree_context
from ingest.queries import builds
from ingest.readers import elf
from ingest.surfaces import Surfaces, attach, kconfig, read_surfaces
from ingest.vmlinux.read import Identity, VmlinuxFacts, is_btf_blob, opened, read_vmlinux
from ingest.vmlinux.sources import image_sources

__all__ = [
    "Identity",
    "IngestResult",
    "build_of",
    "collector_off",
    "ingest",
    "read_image",
    "read_opened",
    "store",
    "surfaces_of",
]


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
    """Seconds per named phase: `with phases("join"): ...`."""

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - start


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
    `modules` (docs/concepts.md#modules) into a Build: the first four stages."""
    phases = phases if phases is not None else _Phases()
    options = _read_config(config) if config else {}
    if modules is not None and not modules.is_dir():
        raise IngestError(f"--modules {modules}: not a directory (give the tree of .ko files, or none)")
    if modules is not None and is_btf_blob(path):
        raise IngestError(f"{path}: a raw BTF blob has no modules to read with it; leave out --modules")
    with opened(path) as image_file:
        return read_opened(
            path,
            image_file,
            identity,
            jobs,
            progress,
            kallsyms,
            phases,
            options,
            modules,
            module_progress,
            config_source=str(config) if options else None,
        )


def read_opened(
    path: Path,
    image_file: BinaryIO,
    identity: Identity,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    kallsyms: Path | None = None,
    phases: _Phases | None = None,
    options: dict[str, str] | None = None,
    modules: Path | None = None,
    module_progress: Callable[[int, int], None] | None = None,
    config_source: str | None = None,
) -> Build:
    """read_image of an image already open (or in memory: a BTF blob out of an archive)
    at `path`, with the config `options` (read from `config_source`; None: given by the caller)."""
    phases = phases if phases is not None else _Phases()
    with phases("read vmlinux"):
        vmlinux = read_vmlinux(path, image_file, identity, kallsyms, jobs, progress)
    with phases("read modules + join" if modules is not None else "join"):
        context = tree_context(vmlinux, attach.callsite_table(options or {}))  # the loader's call-site table
        streamed = read_tree(modules, context, jobs, module_progress) if modules else None
        joined = join_build(vmlinux, streamed)
    with phases("surfaces"):
        surfaces = surfaces_of(vmlinux, joined)
    build = build_of(vmlinux, joined, surfaces, options or {})
    build.sources = image_sources(
        build,
        elf_input=vmlinux.memory is not None,
        kallsyms=str(kallsyms) if kallsyms else None,
        config=(config_source or "given") if options else None,
        modules=str(modules) if modules is not None else None,
    )
    return build


def surfaces_of(vmlinux: VmlinuxFacts, joined: Joined) -> Surfaces:
    """The fourth stage over what the first three read."""
    return read_surfaces(
        vmlinux.memory,
        vmlinux.layouts,
        vmlinux.btf,
        function_names=[f.name for f in joined.functions],
        module_tracepoints=joined.module_tracepoints,
        module_kfuncs=joined.module_kfuncs,
        data_symbols=vmlinux.data_symbols,
    )


def build_of(vmlinux: VmlinuxFacts, joined: Joined, surfaces: Surfaces, config: dict[str, str]) -> Build:
    """The one Build of what the stages read."""
    return Build(
        info=vmlinux.info,
        instances=joined.instances,
        calls=joined.calls,
        symbols=joined.symbols,
        functions=joined.functions,
        layouts=vmlinux.layouts,
        typedefs=vmlinux.typedefs,
        tracepoints=surfaces.tracepoints,
        syscalls=surfaces.syscalls,
        lsm_hooks=surfaces.lsm_hooks,
        kfuncs=surfaces.kfuncs,
        attach=surfaces.attach,
        btf_funcs=surfaces.btf_funcs,
        config=config,
        variables=surfaces.variables,
        modules=joined.modules,
    )


def _read_config(path: Path) -> dict[str, str]:
    try:
        return kconfig.read_config(path)
    except kconfig.BadConfig as exc:
        raise IngestError(str(exc)) from None


@contextmanager
def collector_off() -> Iterator[None]:
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
    found = _already_stored(path, db_path) if not replace else None
    if found:
        return IngestResult(
            name=found, skipped=True, build=None, seconds=time.perf_counter() - start, bytes_added=0
        )
    phases = _Phases()
    with collector_off():
        build = read_image(path, identity, jobs, progress, kallsyms, phases, config, modules, module_progress)
        return store(build, db_path, start, phases, replace=replace, label=identity.label)


def store(
    build: Build,
    db_path: Path,
    start: float,
    phases: _Phases | None = None,
    replace: bool = False,
    label: str | None = None,
) -> IngestResult:
    """Store a read build in `db_path`: a no-op when its build-id is there,
    unless `replace`, or unless the stored one is poorer (db.upgrades)."""
    phases = phases if phases is not None else _Phases()
    before = db_path.stat().st_size if db_path.exists() else 0
    conn = db.connect(db_path)
    try:
        stored = builds.find_build(conn, build.info.build_id)
        if stored and not replace and not upgrades.upgrade(conn, stored.id, build):
            return IngestResult(
                name=stored.name, skipped=True, build=None, seconds=time.perf_counter() - start, bytes_added=0
            )
        seconds = time.perf_counter() - start
        with phases("database write"):
            build_pk = db.store_build(conn, build, seconds, replace=stored is not None, label=label)
        name = builds.build_name(conn, build_pk)
        assert name is not None  # just stored
    finally:
        conn.close()
    return IngestResult(
        name=name,
        skipped=False,
        build=build,
        seconds=time.perf_counter() - start,
        bytes_added=os.path.getsize(db_path) - before,
        phases=dict(phases),
    )


def _already_stored(path: Path, db_path: Path) -> str | None:
    """The name of the build stored under the image's build-id, read without
    reading the whole image (None if not stored, or unknown before reading)."""
    build_id = _quick_build_id(path)
    if not build_id or not db_path.exists():
        return None
    conn = db.connect(db_path)
    try:
        found = builds.find_build(conn, build_id)
        richer = found is not None and upgrades.may_upgrade(conn, found.id, path)
    finally:
        conn.close()
    return found.name if found and not richer else None


def _quick_build_id(path: Path) -> str | None:
    """The build-id without reading the whole image (None if unavailable)."""
    try:
        with open(path, "rb") as f:
            return elf.build_id(elf.open_image(f))
    except (OSError, elf.ImageError, Exception):
        return None
