"""Read one loadable module (docs/concepts.md#modules): opened as a linked
image (ingest.readers.kmod: laid out and relocated like the kernel's module
loader does), then read as vmlinux is: its function symbols, the DWARF walk
of its units, its split BTF over the build's BTF (prototypes, its own types,
fentry FUNCs), its ftrace records and kprobe blacklist, and its trace events."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from ingest.errors import BadModule
from ingest.model import Kfunc, Layout, Module, Prototype, Symbol, Tracepoint
from ingest.readers import dwarf, elf, kmod
from ingest.readers.btf import BtfInfo, read_btf
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces.attach import module_callsite_table, read_attach
from ingest.surfaces.kfuncs import read_kfuncs
from ingest.surfaces.tracepoints import EVENT_STRUCTS, flag_values, read_tracepoints
from ingest.types.cdecl import LayoutBuilder
from ingest.types.layouts import LayoutChannel
from ingest.vmlinux.prototypes import btf_prototypes
from ingest.vmlinux.units import UnitPart, unit_part

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


class ModuleFacts(NamedTuple):
    """What one module adds to its build (read_module reads it)."""

    module: Module  # error set: unreadable, the rest is empty
    part: UnitPart
    symbols: list[Symbol]  # tagged with the module
    prototypes: dict[str, Prototype]  # from its split BTF
    tracepoints: list[Tracepoint]  # tagged with the module
    kfuncs: list[Kfunc] = []  # its BTF_ID set8s' members and bpf_kfunc FUNCs, tagged with the module


def name_from_path(rel: str) -> str:
    """ "drivers/md/md-mod.ko.zst" -> "md_mod" (as the kernel names modules)."""
    return os.path.basename(rel).split(".ko")[0].replace("-", "_")


def unreadable(rel: str, why: str) -> ModuleFacts:
    return ModuleFacts(
        module=Module(name=name_from_path(rel), path=rel, error=why.replace("\n", " ")),
        part=UnitPart.empty(),
        symbols=[],
        prototypes={},
        tracepoints=[],
    )


def read_module(path: Path, rel: str, context: TreeContext) -> ModuleFacts:
    """One module's facts; raises BadModule (and the readers' errors) when unreadable."""
    opened = kmod.open_module(path, base=MODULE_BASE.get(context.arch, 0))
    info = opened.info
    name = opened.name or name_from_path(rel)
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
    part = UnitPart.empty()
    btf_protos = btf_prototypes(btf, builder.texts) if btf and builder else {}
    if image.has(".debug_info"):
        sections = opened.linked.relocate([n for n in dwarf.DEBUG_SECTIONS if image.has(n)])
        units = dwarf.units_from_bytes(sections[".debug_info"], image.endian)
        # DWARF prints the prototypes neither vmlinux nor the module's BTF gives (the join's order).
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
