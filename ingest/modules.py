"""Read every loadable module of a build (docs/concepts.md#modules).

Each `.ko` (or .ko.xz/.zst/.gz) of a module tree is opened as a linked image
(ingest.readers.kmod: laid out and relocated like the kernel's module loader
does), then read as vmlinux is: its function symbols, the DWARF walk of its
units (one process per module, modules spread over the workers), its split
BTF over the build's BTF (prototypes, its own types, fentry FUNCs), its
ftrace records and kprobe blacklist, and its trace events. A module that
cannot be read (corrupt, truncated, built for another kernel) is recorded
with the reason, and nothing else of it is kept; the rest of the build lands.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from ingest.assemble import ModuleFacts, UnitPart, _btf_prototypes, unit_part
from ingest.cdecl import LayoutBuilder
from ingest.errors import BadBtf, BadDwarf, BadModule, ImageError
from ingest.layouts import LayoutChannel, digest_of
from ingest.model import CallEdge, Instance, Kfunc, Layout, Module, Prototype, Symbol, Tracepoint
from ingest.readers import dwarf, elf, kmod
from ingest.readers.btf import BtfInfo, read_btf
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces.attach import module_callsite_table, read_attach
from ingest.surfaces.kfuncs import read_kfuncs
from ingest.surfaces.tracepoints import EVENT_STRUCTS, flag_values, read_tracepoints

#: Where each arch's kernel puts modules (MODULES_VADDR): a base away from 0,
#: so that no function sits at address 0.
MODULE_BASE = {
    "amd64": 0xFFFFFFFFC0000000,
    "arm64": 0xFFFF800000000000,
    "ppc64el": 0xC008000000000000,
    "ppc64": 0xC008000000000000,
    "riscv64": 0xFFFFFFFF01000000,
    "s390x": 0x3FF80000000,
    "armhf": 0xBF000000,
    "i386": 0xF8000000,
}


@dataclass(frozen=True, slots=True)
class TreeContext:
    """What every module of one build is read against."""

    release: str | None  # the image's release: a module's vermagic must start with it
    arch: str
    btf: BtfInfo | None  # the base of the modules' split BTF
    layouts: list[Layout]  # from vmlinux, what the event reader needs (event_layouts())
    types: LayoutBuilder | None = None  # vmlinux's BTF layouts: a split BTF's layouts build on them
    channel: LayoutChannel = field(default_factory=lambda: LayoutChannel([]))  # how layouts cross
    prototyped: frozenset[str] = frozenset()  # names vmlinux gives a prototype: a module's DWARF need not
    callsites: str | None = None  # the loader's ftrace call-site table by the config (attach.callsite_table)


def event_layouts(layouts: list[Layout], btf: BtfInfo | None) -> list[Layout]:
    """What of vmlinux's types a module's trace events are read through: the
    event record structs, and its TRACE_EVENT_FL_* values as one enum (the
    kernel's is anonymous, in vmlinux's BTF, not in a module's)."""
    wanted = [lay for lay in layouts if lay.kind == "struct" and lay.size and lay.name in EVENT_STRUCTS]
    flags = flag_values(layouts, btf)
    return [*wanted, Layout("enum", "", 4, values=sorted(flags.items()))]


_context: list[TreeContext] = []  # the worker's, set before the fork


def module_files(tree: Path) -> list[str]:
    """The module files of a tree, by relative path."""
    return kmod.list_modules(tree)


def read_tree(
    tree: Path,
    context: TreeContext,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[ModuleFacts]:
    """Every module of `tree`, in path order; `progress(done, total)` as they come."""
    work = [(str(tree / rel), rel) for rel in module_files(tree)]
    _context[:] = [context]
    jobs = jobs or min(os.cpu_count() or 1, 4)
    total = len(work)
    if jobs <= 1 or total < 4:
        results: Iterator[_Packed] = map(_read_one, work)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(jobs, initializer=gc.disable)
        # Largest first would balance better, but path order keeps the output stable: small chunks instead.
        results = pool.imap(_read_one, work, chunksize=2)
    # The results thread unpickles millions of objects into a process holding vmlinux's
    # build: with the cyclic collector on, its full passes cost more than the unpickling.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for done, packed in enumerate(results, 1):
            if progress is not None:
                progress(done, total)
            yield _unpacked(packed, context.channel)
    finally:
        if collecting:
            gc.enable()
        if pool is not None:
            pool.terminate()
            pool.join()


class _Packed(NamedTuple):
    """ModuleFacts as it crosses from a worker: records as plain tuples (pickled
    about 7 times faster than dataclasses)."""

    module: Module  # its layouts travel in `layouts`
    layouts: bytes  # Module.layouts, by LayoutChannel.dumps
    instances: list[tuple]  # model.Instance fields, in order
    calls: list[tuple]  # model.CallEdge fields
    symbols: list[tuple]  # model.Symbol fields
    prototypes: dict[str, Prototype]  # from its split BTF
    dwarf_prototypes: dict[str, Prototype]  # UnitPart.prototypes
    tracepoints: list[Tracepoint]
    kfuncs: list[Kfunc]


_INSTANCE = attrgetter(*(f.name for f in fields(Instance)))
_CALL = attrgetter(*(f.name for f in fields(CallEdge)))
_SYMBOL = attrgetter(*(f.name for f in fields(Symbol)))


def _packed(facts: ModuleFacts, channel: LayoutChannel) -> _Packed:
    for layout in facts.module.layouts:
        digest_of(layout)  # here, on a worker, and not again where they arrive
    return _Packed(
        module=replace(facts.module, layouts=[]),
        layouts=channel.dumps(facts.module.layouts),
        instances=list(map(_INSTANCE, facts.part.instances)),
        calls=list(map(_CALL, facts.part.calls)),
        symbols=list(map(_SYMBOL, facts.symbols)),
        prototypes=facts.prototypes,
        dwarf_prototypes=facts.part.prototypes,
        tracepoints=facts.tracepoints,
        kfuncs=facts.kfuncs,
    )


def _unpacked(packed: _Packed, channel: LayoutChannel) -> ModuleFacts:
    """The facts again, their names, paths and layouts shared with every other
    module's: each arrives with its own copies of "include/linux/list.h",
    "list_add", and of the structs its own structs hold that other modules define."""
    intern = sys.intern
    packed.module.layouts[:] = channel.loads(packed.layouts)
    instances = [
        Instance(
            intern(name),
            external,
            decl and intern(decl),
            line,
            cu and intern(cu),
            inline,
            address,
            defined,
            module,
        )
        for name, external, decl, line, cu, inline, address, defined, module in packed.instances
    ]
    symbols = [
        Symbol(intern(name), intern(stem), suffixes, address, size, binding, section, module)
        for name, stem, suffixes, address, size, binding, section, module in packed.symbols
    ]
    return ModuleFacts(
        module=packed.module,
        part=UnitPart(instances, [CallEdge(*c) for c in packed.calls], packed.dwarf_prototypes, []),
        symbols=symbols,
        prototypes=packed.prototypes,
        tracepoints=packed.tracepoints,
        kfuncs=packed.kfuncs,
    )


def _ko_path(rel: str) -> str:
    """ "fs/ext4/ext4.ko.zst" -> "fs/ext4/ext4.ko": the path the package ships (the cache compresses)."""
    for suffix in (".zst", ".xz", ".gz"):
        if rel.endswith(".ko" + suffix):
            return rel.removesuffix(suffix)
    return rel


def _read_one(item: tuple[str, str]) -> _Packed:
    path, rel = item[0], _ko_path(item[1])
    context = _context[0]
    try:
        return _packed(read_module(Path(path), rel, context), context.channel)
    except (BadModule, BadBtf, BadDwarf, ImageError) as exc:
        return _packed(_unreadable(rel, str(exc)), context.channel)
    except Exception as exc:  # a reader's bug on one module must not sink the build
        return _packed(_unreadable(rel, f"{exc.__class__.__name__}: {exc}"), context.channel)


def _name_from_path(rel: str) -> str:
    """ "drivers/md/md-mod.ko.zst" -> "md_mod" (as the kernel names modules)."""
    return os.path.basename(rel).split(".ko")[0].replace("-", "_")


def _unreadable(rel: str, why: str) -> ModuleFacts:
    return ModuleFacts(
        module=Module(name=_name_from_path(rel), path=rel, error=why.replace("\n", " ")),
        part=UnitPart([], [], {}, []),
        symbols=[],
        prototypes={},
        tracepoints=[],
    )


def read_module(path: Path, rel: str, context: TreeContext) -> ModuleFacts:
    """One module's facts; raises BadModule (and the readers' errors) when unreadable."""
    opened = kmod.open_module(path, base=MODULE_BASE.get(context.arch, 0))
    info = opened.info
    name = opened.name or _name_from_path(rel)
    if context.release and info.vermagic and info.vermagic.split()[0] != context.release:
        raise BadModule(
            f"vermagic {info.vermagic.split()[0]!r} is not the image's release {context.release!r}"
        )
    image = opened.image
    symbols = [replace(s, module=name) for s in elf.function_symbols(image)]
    btf = None
    raw_btf = image.section(".BTF")
    if raw_btf and context.btf is not None:
        btf = read_btf(raw_btf, base=context.btf)
    builder = LayoutBuilder(btf.graph, base=context.types) if btf else None
    own_layouts = builder.named() if builder else []
    part = UnitPart([], [], {}, [])
    btf_protos = _btf_prototypes(btf, builder.texts) if btf and builder else {}
    if image.has(".debug_info"):
        sections = opened.linked.relocate([n for n in dwarf.DEBUG_SECTIONS if image.has(n)])
        units = dwarf.units_from_bytes(sections[".debug_info"], image.endian)
        # DWARF prints the prototypes neither vmlinux nor the module's BTF gives (assemble's order).
        config = dwarf.WalkConfig(frozenset(btf_protos), btf is None, prototyped=context.prototyped)
        walked = list(dwarf.walk(units, sections, image.endian, config, jobs=1))
        part = unit_part(walked, symbols, module=name)
        if btf is None:
            own_layouts = part.layouts
    memory = ImageMemory(image)
    names = frozenset(i.name for i in part.instances) | frozenset(s.name for s in symbols)
    events = read_tracepoints(memory, [*context.layouts, *own_layouts], btf, names)
    return ModuleFacts(
        module=Module(
            name=name,
            path=rel,
            license=info.license,
            description=info.description,
            depends=tuple(d for d in info.depends if d),
            vermagic=info.vermagic,
            size=opened.size,
            layouts=[lay for lay in own_layouts if lay.name],
            attach=read_attach(memory, module_callsite_table(memory, context.callsites)),
            btf_funcs=frozenset(btf.funcs) if btf else frozenset(),
        ),
        part=part._replace(layouts=[]),
        symbols=symbols,
        prototypes=btf_protos,
        tracepoints=[replace(t, module=name) for t in events],
        kfuncs=[replace(k, module=name) for k in read_kfuncs(memory, btf)],
    )


def summary(modules: Sequence[Module]) -> str:
    """ "4 023 modules (2 unreadable)"."""
    bad = sum(1 for m in modules if m.error)
    return f"{len(modules)} modules" + (f" ({bad} unreadable)" if bad else "")
