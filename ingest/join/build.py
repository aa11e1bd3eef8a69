"""The third stage: join vmlinux and its modules into one build's functions
(docs/concepts.md#modules): their instances, caller edges and symbols in one
list each, and one status row per function name (#function-status) with its
prototype (#prototypes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.join import classify
from ingest.model import CallEdge, FunctionStatus, Instance, Kfunc, Module, Prototype, Symbol, Tracepoint
from ingest.modules.module import ModuleFacts
from ingest.vmlinux.read import VmlinuxFacts
from ingest.vmlinux.units import UnitPart


@dataclass(slots=True)
class Joined:
    """The build's functions, over vmlinux and its modules."""

    instances: list[Instance]
    calls: list[CallEdge]  # indexes into `instances`
    symbols: list[Symbol]
    functions: list[FunctionStatus]
    modules: list[Module] | None  # None: modules not read
    module_tracepoints: list[Tracepoint]  # the modules' trace events, in path order
    module_kfuncs: list[Kfunc]  # the modules' kfuncs, in path order


@dataclass(slots=True)
class _ModulePrototypes:
    """Each name's first prototype from the modules (path order), kept as they
    arrive: the others would stay alive until the last module is read (peak memory)."""

    btf: dict[str, Prototype]
    dwarf: dict[str, Prototype]


def join_build(vmlinux: VmlinuxFacts, modules: Iterable[ModuleFacts] | None) -> Joined:
    """One build's functions from vmlinux's facts and its modules' (None: not read),
    which may be streamed: each is taken in as it arrives."""
    prototypes = _ModulePrototypes({}, {})
    read = None if modules is None else [_taken_in(facts, prototypes) for facts in modules]
    instances, calls = _join_units(vmlinux.part, [facts.part for facts in read or ()])
    symbols = list(vmlinux.symbols)
    kept = None if read is None else [facts.module for facts in read]
    module_tracepoints: list[Tracepoint] = []
    module_kfuncs: list[Kfunc] = []
    for facts in read or ():
        symbols += facts.symbols
        module_tracepoints += facts.tracepoints
        module_kfuncs += facts.kfuncs
        facts.part.instances.clear()  # the joined list holds what is kept (declarations go)
    del read
    return Joined(
        instances=instances,
        calls=calls,
        symbols=symbols,
        functions=_functions(vmlinux, instances, symbols, kept, prototypes),
        modules=kept,
        module_tracepoints=module_tracepoints,
        module_kfuncs=module_kfuncs,
    )


def _taken_in(facts: ModuleFacts, prototypes: _ModulePrototypes) -> ModuleFacts:
    """The module's facts without its prototypes, which join the first-seen ones."""
    for name, proto in facts.prototypes.items():
        prototypes.btf.setdefault(name, proto)
    for name, proto in facts.part.prototypes.items():
        prototypes.dwarf.setdefault(name, proto)
    return facts._replace(prototypes={}, part=facts.part._replace(prototypes={}))


def _functions(
    vmlinux: VmlinuxFacts,
    instances: list[Instance],
    symbols: list[Symbol],
    modules: list[Module] | None,
    module_prototypes: _ModulePrototypes,
) -> list[FunctionStatus]:
    """Per-name status over vmlinux and every module, by name. A prototype is
    vmlinux's BTF's, else vmlinux's DWARF's, else the first module's BTF's, else its DWARF's."""
    by_name: dict[str, list[Instance]] = defaultdict(list)
    for inst in instances:
        by_name[inst.name].append(inst)
    syms_by_stem: dict[str, list[Symbol]] = defaultdict(list)
    for sym in symbols:
        syms_by_stem[sym.stem].append(sym)
    names = set(by_name) | set(syms_by_stem) | (set(vmlinux.btf.funcs) if vmlinux.btf else set())
    for module in modules or ():
        names |= module.btf_funcs
    home = _Homes(modules)
    functions = []
    for name in sorted(names):
        insts, syms = by_name.get(name, []), syms_by_stem.get(name, [])
        proto = (
            vmlinux.btf_prototypes.get(name)
            or vmlinux.part.prototypes.get(name)
            or module_prototypes.btf.get(name)
            or module_prototypes.dwarf.get(name)
        )
        functions.append(
            FunctionStatus(
                name=name,
                collision=classify.collision(insts),
                inline=classify.inline(insts, syms),
                suffixes=classify.suffixes(syms),
                n_instances=len(insts),
                n_symbols=len(syms),
                prototype=proto,
                module=home(insts, syms, name),
            )
        )
    return functions


def _join_units(vmlinux: UnitPart, parts: list[UnitPart]) -> tuple[list[Instance], list[CallEdge]]:
    """vmlinux's instances and edges, then each module's. A module's DWARF
    declares every external function it calls: such a declaration is not an
    instance of its own but the definition's (vmlinux's, or the module's
    that defines it), so its callers become that function's callers. An
    external defined nowhere keeps its first declaration."""
    instances, calls = list(vmlinux.instances), list(vmlinux.calls)
    external: dict[str, int] = {}  # name -> its instance (-1: a module defines it, not placed yet)
    for k, inst in enumerate(instances):
        if inst.external:
            external.setdefault(inst.name, k)
    for part in parts:
        for inst in part.instances:
            if inst.external and inst.defined and inst.name not in external:
                external[inst.name] = -1
    indexes: list[list[int | None]] = []
    for part in parts:  # place every instance but the declarations of placed (or claimed) names
        index: list[int | None] = []
        for inst in part.instances:
            known = external.get(inst.name) if inst.external else None
            if inst.external and not inst.defined and known is not None:
                index.append(None)  # resolved below, once every definition is placed
                continue
            if inst.external and (known is None or (known == -1 and inst.defined)):
                external[inst.name] = len(instances)
            index.append(len(instances))
            instances.append(inst)
        indexes.append(index)
    for part, index in zip(parts, indexes):
        # Edges stay one per (callee, caller, kind): a module has one instance per external name,
        # so no two of its callees become one, and its callers are its own.
        where = [external[i.name] if k is None else k for i, k in zip(part.instances, index)]
        # Positional: millions of edges, and keywords make each construction ~1.7x slower.
        calls += [CallEdge(where[c.callee], where[c.caller], c.kind, c.sites) for c in part.calls]
        part.calls.clear()  # the module's own copy is not needed any more
    return instances, calls


class _Homes:
    """Where a name lives when vmlinux has no instance or symbol of it: the
    first module, in path order, with a symbol of the exact name (what kprobe
    and fentry attach to: its attachability is the function's), else the first
    that defines it (or, defining none, the first whose BTF has a FUNC of it).
    Module positions are looked up, not scanned."""

    def __init__(self, modules: list[Module] | None):
        self.order = {m.name: k for k, m in reversed(list(enumerate(modules or ())))}
        self.first_btf: dict[str, str] = {}
        for module in reversed(modules or ()):
            self.first_btf.update(dict.fromkeys(module.btf_funcs, module.name))

    def __call__(self, insts: list[Instance], syms: list[Symbol], name: str) -> str | None:
        if not self.order:
            return None
        if any(i.module is None for i in insts) or any(s.module is None for s in syms):
            return None
        found = {s.module for s in syms if s.name == name}
        found = found or {i.module for i in insts if i.defined} | {s.module for s in syms}
        if not found:
            return self.first_btf.get(name)
        placed = [m for m in found if m in self.order]
        return min(placed, key=self.order.__getitem__) if placed else None
