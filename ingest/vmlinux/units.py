"""Instance identity (docs/concepts.md#instances) and caller edges (#callers)
of one image's compile units: vmlinux's, or one module's."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ingest.model import CallEdge, Instance, Layout, Prototype, Symbol, Typedef
from ingest.readers.dwarf import Edge, Sub, UnitFacts
from ingest.types import cdecl

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

    @classmethod
    def empty(cls) -> UnitPart:
        """No units: an image without DWARF."""
        return cls(instances=[], calls=[], prototypes={}, layouts=[])


def unit_part(units: Iterable[UnitFacts], symbols: list[Symbol], module: str | None = None) -> UnitPart:
    """Instance identity (docs/concepts.md#instances) and caller edges
    (#callers) of one image's units; `module` tags the instances."""
    walked = _gather(units)
    norm = PathNormaliser(walked.cu_names, walked.comp_dirs)
    instances, die_instance = _instances(walked, norm, module)
    calls = _caller_edges(walked.edges, die_instance, instances)
    _addresses_from_symbols(instances, symbols)
    return UnitPart(
        instances=instances,
        calls=calls,
        prototypes=walked.prototypes,
        layouts=walked.layouts,
        typedefs=list(walked.typedefs.values()),
    )


@dataclass(slots=True)
class _Walked:
    """The units' facts gathered in unit order."""

    subs: dict[int, Sub] = field(default_factory=dict)  # by DIE offset
    sub_cu: dict[int, int] = field(default_factory=dict)  # DIE offset -> index of its unit
    cu_names: list[str | None] = field(default_factory=list)
    comp_dirs: list[str | None] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    prototypes: dict[str, Prototype] = field(default_factory=dict)  # a definition's before a declaration's
    layouts: list[Layout] = field(default_factory=list)
    typedefs: dict[tuple[str, str, str], Typedef] = field(default_factory=dict)  # the first of each


def _gather(units: Iterable[UnitFacts]) -> _Walked:
    walked = _Walked()
    from_decl: dict[str, bool] = {}
    layout_keys: set[tuple] = set()
    for u in units:
        index = len(walked.cu_names)
        walked.cu_names.append(u.name)
        walked.comp_dirs.append(u.comp_dir)
        for s in u.subs:
            walked.subs[s.die] = s
            walked.sub_cu[s.die] = index
        walked.edges.extend(u.edges)
        for name, (unit_proto, decl) in u.prototypes.items():
            if name not in walked.prototypes or (from_decl[name] and not decl):
                walked.prototypes[name], from_decl[name] = unit_proto, decl
        # Workers drop the types they walked before, each on its own: keep the
        # first of each in unit order, as one process walking them all would.
        for lay in u.layouts:
            if (key := cdecl.layout_key(lay)) not in layout_keys:
                layout_keys.add(key)
                walked.layouts.append(lay)
        for typedef in u.typedefs:
            walked.typedefs.setdefault(typedef.key(), typedef)
    return walked


def _instances(
    walked: _Walked, norm: PathNormaliser, module: str | None
) -> tuple[list[Instance], dict[int, int]]:
    """One instance per external name, one per (name, location, CU) for statics;
    and the instance of each DIE."""
    cu_paths = [norm(n) for n in walked.cu_names]
    subs, sub_cu = walked.subs, walked.sub_cu
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
    return instances, die_instance


def _caller_edges(
    edges: list[Edge], die_instance: dict[int, int], instances: list[Instance]
) -> list[CallEdge]:
    """Caller edges, with site counts; inlined copies give an address of last resort."""
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
    # Positional: millions of edges, and keywords make each construction ~1.7x slower.
    return [CallEdge(callee, caller, kind, sites) for (callee, caller, kind), sites in counts.items()]


def _addresses_from_symbols(instances: list[Instance], symbols: list[Symbol]) -> None:
    """Functions described by address ranges only (e.g. split .cold parts): the symbol's address."""
    sym_address: dict[str, int] = {}
    for sym in symbols:
        sym_address.setdefault(sym.name, sym.address)
    for inst in instances:
        if inst.address is None and inst.defined and inst.name in sym_address:
            inst.address = sym_address[inst.name]
