"""Assemble one Build from the per-unit DWARF facts, the symbols and the BTF:
instance identity (docs/concepts.md#instances), caller edges (#callers), per-name status
(#function-status), prototypes (#prototypes) and layouts (#types)."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ingest import cdecl, classify
from ingest.model import (
    Build,
    BuildInfo,
    CallEdge,
    FunctionStatus,
    Instance,
    Kfunc,
    Layout,
    Module,
    Prototype,
    Symbol,
    Tracepoint,
    Typedef,
)
from ingest.readers.btf import BtfInfo
from ingest.readers.dwarf import Edge, Sub, UnitFacts

#: Top-level directories of the kernel tree, used to find where a builder's
#: directory ends in an absolute path.
KERNEL_TOPS = {
    "arch",
    "block",
    "certs",
    "crypto",
    "drivers",
    "fs",
    "include",
    "init",
    "io_uring",
    "ipc",
    "kernel",
    "lib",
    "mm",
    "net",
    "rust",
    "samples",
    "scripts",
    "security",
    "sound",
    "tools",
    "usr",
    "virt",
}
_BUILD_DIRS = [
    re.compile(p)
    for p in (
        r"^(?:.*/)?debian/build/build_[^/]+/",  # Debian out-of-tree builds
        r"^(?:.*/)?debian/build/source_[^/]+/",  # Debian featureset (e.g. rt) source copies
        r"^/build/[^/]+/linux-[^/]+/",  # Ubuntu (/build/linux-XXXX/linux-5.4.0/)
        r"^/usr/src/(?:debug/)?(?:kernel-[^/]+/)?linux-[^/]+/",  # Fedora and local trees
    )
]


class PathNormaliser:
    """Maps compiler-recorded paths to kernel-tree paths for one build."""

    def __init__(self, cu_names: Iterable[str | None], comp_dirs: Iterable[str | None]) -> None:
        roots: dict[str, int] = defaultdict(int)
        for name in cu_names:
            if name and name.startswith("/"):
                parts = posixpath.normpath(name).split("/")
                for i, part in enumerate(parts[1:-1], 1):
                    if part in KERNEL_TOPS:
                        roots["/".join(parts[:i]) + "/"] += 1
                        break
        dirs = {posixpath.normpath(d) + "/" for d in comp_dirs if d}
        # Longest first, so a build directory inside the source tree wins.
        self.prefixes = sorted(dirs | set(roots), key=len, reverse=True)
        self._cache: dict[str, str] = {}

    def __call__(self, path: str | None) -> str | None:
        if path is None:
            return None
        out = self._cache.get(path)
        if out is None:
            out = self._cache[path] = self._normalise(path)
        return out

    def _normalise(self, path: str) -> str:
        p = posixpath.normpath(path)
        for prefix in self.prefixes:
            if p.startswith(prefix):
                return p[len(prefix) :]
        for pattern in _BUILD_DIRS:
            m = pattern.match(p)
            if m:
                return p[m.end() :]
        return p


def _resolve_root(die: int, subs: dict[int, Sub]) -> Sub | None:
    """Follow abstract_origin/specification links to the DIE that names the function."""
    s = subs.get(die)
    for _ in range(8):
        if s is None:
            return None
        if s.origin is None or s.origin not in subs:
            return s
        parent = subs[s.origin]
        if s.name is not None and parent.name is None:
            return s
        s = parent
    return s


class UnitPart(NamedTuple):
    """Instances and caller edges of one image's compile units (vmlinux, or one
    module: its instances carry the module's name), with DWARF's prototypes and layouts."""

    instances: list[Instance]
    calls: list[CallEdge]  # indexes into `instances`
    prototypes: dict[str, Prototype]  # from DWARF, by name
    layouts: list[Layout]  # from DWARF (builds without BTF)
    typedefs: list[Typedef] = []  # from DWARF (builds without BTF)


class ModuleFacts(NamedTuple):
    """What one module adds to its build (ingest.modules reads it)."""

    module: Module  # error set: unreadable, the rest is empty
    part: UnitPart
    symbols: list[Symbol]  # tagged with the module
    prototypes: dict[str, Prototype]  # from its split BTF
    tracepoints: list[Tracepoint]  # tagged with the module
    kfuncs: list[Kfunc] = []  # its BTF_ID set8s' members and bpf_kfunc FUNCs, tagged with the module


def assemble(
    info: BuildInfo,
    units: Iterable[UnitFacts],
    symbols: list[Symbol],
    btf: BtfInfo | None,
    modules: Callable[[list[Layout], cdecl.LayoutBuilder | None, frozenset[str]], Iterable[ModuleFacts]]
    | None = None,
) -> Build:
    """One Build from everything the readers produced. `units` may be a lazy
    iterator: BTF prototypes and layouts are printed before it is consumed.
    `modules(vmlinux's layouts, the builder of its BTF's layouts, the names
    vmlinux gives a prototype)` (None: modules not read) gives the modules,
    which join vmlinux's instances, symbols and names."""
    types = cdecl.LayoutBuilder(btf.graph) if btf else None
    btf_protos = _btf_prototypes(btf, types.texts) if btf and types else {}
    layouts = types.named() if types else []
    vmlinux = unit_part(units, symbols)
    # vmlinux's prototypes are chosen before any module's: modules need not print them.
    prototyped = frozenset(btf_protos) | frozenset(vmlinux.prototypes)
    # Any module's BTF before DWARF: a module's DWARF may only declare a function another module defines.
    module_protos: dict[str, Prototype] = {}
    module_dwarf_protos: dict[str, Prototype] = {}
    read: list[ModuleFacts] | None = None
    if modules is not None:
        read = []
        for facts in modules(layouts if btf else vmlinux.layouts, types, prototyped):
            # Each name's first prototype is kept as the modules arrive: the others
            # would stay alive until the last module is read (peak memory).
            for name, module_proto in facts.prototypes.items():
                module_protos.setdefault(name, module_proto)
            for name, module_proto in facts.part.prototypes.items():
                module_dwarf_protos.setdefault(name, module_proto)
            read.append(facts._replace(prototypes={}, part=facts.part._replace(prototypes={})))
    instances, calls = _join_units(vmlinux, [facts.part for facts in read or ()])
    all_symbols = list(symbols)
    module_events: list[Tracepoint] = []  # surfaces.add_surfaces puts vmlinux's first
    module_kfuncs: list[Kfunc] = []  # likewise
    kept: list[Module] | None = None if read is None else [facts.module for facts in read]
    for facts in read or ():
        all_symbols += facts.symbols
        module_events += facts.tracepoints
        module_kfuncs += facts.kfuncs
        facts.part.instances.clear()  # the joined list holds what is kept (declarations go)
    del read

    # Per-name status, over vmlinux and every module (docs/concepts.md#modules).
    by_name: dict[str, list[Instance]] = defaultdict(list)
    for inst in instances:
        by_name[inst.name].append(inst)
    syms_by_stem: dict[str, list[Symbol]] = defaultdict(list)
    for sym in all_symbols:
        syms_by_stem[sym.stem].append(sym)
    names = set(by_name) | set(syms_by_stem) | (set(btf.funcs) if btf else set())
    for module in kept or ():
        names |= module.btf_funcs
    functions = []
    home = _Homes(kept)
    for name in sorted(names):
        insts, syms = by_name.get(name, []), syms_by_stem.get(name, [])
        proto = (
            btf_protos.get(name)
            or vmlinux.prototypes.get(name)
            or module_protos.get(name)
            or module_dwarf_protos.get(name)
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

    build = Build(
        info=info,
        instances=instances,
        calls=calls,
        symbols=all_symbols,
        functions=functions,
        layouts=layouts if btf else vmlinux.layouts,
        typedefs=types.typedefs() if types else vmlinux.typedefs,
        modules=kept,
    )
    build.tracepoints = module_events
    build.kfuncs = module_kfuncs
    return build


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
        calls += [CallEdge(where[c.callee], where[c.caller], c.kind, c.sites) for c in part.calls]
        part.calls.clear()  # the module's own copy is not needed any more
    return instances, calls


class _Homes:
    """Where a name lives when vmlinux has no instance or symbol of it: the
    first module, in path order, that defines it (or, defining none, the first
    whose BTF has a FUNC of it). Module positions are looked up, not scanned."""

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
        found = {i.module for i in insts if i.defined} | {s.module for s in syms}
        if not found:
            return self.first_btf.get(name)
        placed = [m for m in found if m in self.order]
        return min(placed, key=self.order.__getitem__) if placed else None


def unit_part(units: Iterable[UnitFacts], symbols: list[Symbol], module: str | None = None) -> UnitPart:
    """Instance identity (docs/concepts.md#instances) and caller edges
    (#callers) of one image's units; `module` tags the instances."""
    subs: dict[int, Sub] = {}
    sub_cu: dict[int, int] = {}
    cu_names: list[str | None] = []
    comp_dirs: list[str | None] = []
    edges: list[Edge] = []
    dwarf_protos: dict[str, Prototype] = {}
    dwarf_from_decl: dict[str, bool] = {}
    dwarf_layouts: list[Layout] = []
    layout_keys: set[tuple] = set()
    dwarf_typedefs: dict[tuple[str, str, str], Typedef] = {}
    for u in units:
        index = len(cu_names)
        cu_names.append(u.name)
        comp_dirs.append(u.comp_dir)
        for s in u.subs:
            subs[s.die] = s
            sub_cu[s.die] = index
        edges.extend(u.edges)
        for name, (unit_proto, from_decl) in u.prototypes.items():
            if name not in dwarf_protos or (dwarf_from_decl[name] and not from_decl):
                dwarf_protos[name], dwarf_from_decl[name] = unit_proto, from_decl
        # Workers drop the types they walked before, each on its own: keep the
        # first of each in unit order, as one process walking them all would.
        for lay in u.layouts:
            if (key := cdecl.layout_key(lay)) not in layout_keys:
                layout_keys.add(key)
                dwarf_layouts.append(lay)
        for typedef in u.typedefs:
            dwarf_typedefs.setdefault(typedef.key(), typedef)
    norm = PathNormaliser(cu_names, comp_dirs)
    cu_paths = [norm(n) for n in cu_names]

    # Instances: one per external name, one per (name, location, CU) for statics.
    instances: list[Instance] = []
    by_key: dict[tuple[str | int | None, ...], int] = {}
    die_instance: dict[int, int] = {}
    for die, s in subs.items():
        root = _resolve_root(die, subs)
        if root is None or root.name is None:
            continue
        name, external, inline = root.name, root.external, root.inline
        decl_file, decl_line = norm(root.decl_file), root.decl_line
        cu = cu_paths[sub_cu[root.die]]
        key = (name,) if external else (name, decl_file, decl_line, cu)
        idx = by_key.get(key)
        is_definition = s.concrete or (inline in (1, 3))  # concrete code, or inlined somewhere
        if idx is None:
            idx = by_key[key] = len(instances)
            instances.append(
                Instance(
                    name=name,
                    external=external,
                    decl_file=decl_file,
                    decl_line=decl_line,
                    cu=cu if (not external or s.concrete) else None,
                    inline=inline,
                    address=s.low_pc if s.concrete else None,
                    defined=False,
                    module=module,
                )
            )
        inst = instances[idx]
        die_instance[die] = idx
        if s.concrete:  # a definition or out-of-line copy: its CU and location win
            inst.defined = True
            if inst.address is None:
                inst.address = s.low_pc
            if external:
                inst.cu = cu_paths[sub_cu[die]]
                if not s.declaration and s.decl_file is not None and s.origin is None:
                    inst.decl_file, inst.decl_line = norm(s.decl_file), s.decl_line
        if inline is not None and (inst.inline is None or inline > inst.inline):
            inst.inline = inline
        if is_definition and inline in (1, 3):
            inst.defined = True

    # Caller edges, with site counts; inlined copies give an address of last resort.
    counts: dict[tuple[int, int, str], int] = defaultdict(int)
    for callee_die, caller_die, kind, address in edges:
        callee = die_instance.get(callee_die)
        caller = die_instance.get(caller_die)
        if callee is None or caller is None:
            continue
        counts[(callee, caller, kind)] += 1
        if kind == "inline":
            inst = instances[callee]
            inst.defined = True
            if inst.address is None and address:
                inst.address = address
    calls = [CallEdge(callee, caller, kind, sites) for (callee, caller, kind), sites in counts.items()]

    # Functions described by address ranges only (e.g. split .cold parts): the symbol's address.
    sym_address: dict[str, int] = {}
    for sym in symbols:
        sym_address.setdefault(sym.name, sym.address)
    for inst in instances:
        if inst.address is None and inst.defined and inst.name in sym_address:
            inst.address = sym_address[inst.name]
    return UnitPart(instances, calls, dwarf_protos, dwarf_layouts, list(dwarf_typedefs.values()))


def _btf_prototypes(btf: BtfInfo, texts: cdecl.TypeTexts | None = None) -> dict[str, Prototype]:
    """Prototypes of every BTF FUNC (`texts`: its graph's). Functions share
    FUNC_PROTOs (BTF is deduplicated), so each is printed once with a placeholder name."""
    placeholder = "\0"
    printed: dict[int, Prototype | None] = {}
    out: dict[str, Prototype] = {}
    for name, ids in btf.funcs.items():
        tid = ids[0]
        if tid not in printed:
            try:
                printed[tid] = cdecl.prototype(btf.graph, tid, placeholder, "btf", texts)
            except ValueError:
                printed[tid] = None
        proto = printed[tid]
        if proto is not None:
            out[name] = Prototype(
                return_type=proto.return_type,
                params=proto.params,
                variadic=proto.variadic,
                text=proto.text.replace(placeholder, name, 1),
                source="btf",
                canon_params=proto.canon_params,
                canon_return=proto.canon_return,
            )
    return out
