"""The second stage: read every loadable module of a build's tree in worker
processes, streamed to the join in path order (docs/concepts.md#modules). A
module that cannot be read (corrupt, truncated, built for another kernel) is
recorded with the reason, and nothing else of it is kept; the rest of the build lands.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields, replace
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from ingest.errors import BadBtf, BadDwarf, BadModule, ImageError
from ingest.model import CallEdge, Instance, Kfunc, Module, Prototype, Symbol, Tracepoint
from ingest.modules.module import ModuleFacts, TreeContext, event_layouts, read_module, unreadable
from ingest.readers import kmod
from ingest.types.layouts import LayoutChannel, digest_of
from ingest.vmlinux.read import VmlinuxFacts
from ingest.vmlinux.units import UnitPart


def tree_context(vmlinux: VmlinuxFacts, callsites: str | None = None) -> TreeContext:
    """What every module of the build is read against, from its vmlinux (and the
    ftrace call-site table its config names: attach.callsite_table)."""
    return TreeContext(
        release=vmlinux.info.release,
        arch=vmlinux.info.arch or "",
        btf=vmlinux.btf,
        layouts=event_layouts(vmlinux.layouts, vmlinux.btf),
        types=vmlinux.types,
        channel=LayoutChannel(vmlinux.types.built() if vmlinux.types else []),
        prototyped=vmlinux.prototyped,
        callsites=callsites,
    )


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
    # Positional records: millions per build, and keywords make each construction ~1.7x slower.
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
        part=UnitPart(
            instances=instances,
            calls=[CallEdge(*c) for c in packed.calls],
            prototypes=packed.dwarf_prototypes,
            layouts=[],
        ),
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
        return _packed(unreadable(rel, str(exc)), context.channel)
    except Exception as exc:  # a reader's bug on one module must not sink the build
        return _packed(unreadable(rel, f"{exc.__class__.__name__}: {exc}"), context.channel)


def summary(modules: Sequence[Module]) -> str:
    """ "4 023 modules (2 unreadable)"."""
    bad = sum(1 for m in modules if m.error)
    return f"{len(modules)} modules" + (f" ({bad} unreadable)" if bad else "")
