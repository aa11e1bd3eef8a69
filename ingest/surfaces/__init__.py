"""Fill a Build's other dependency surfaces (docs/concepts.md#surfaces, docs/concepts.md#attachability)
from its image: tracepoints, syscalls, LSM hooks, kfuncs, variables and per-symbol attachability."""

from __future__ import annotations

from ingest.model import Build, Variable
from ingest.readers.btf import BtfInfo
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces.attach import read_attach
from ingest.surfaces.kfuncs import read_kfuncs, with_modules
from ingest.surfaces.lsm import read_lsm_hooks
from ingest.surfaces.syscalls import read_syscalls
from ingest.surfaces.tracepoints import read_tracepoints
from ingest.surfaces.variables import object_symbols, read_variables


def add_surfaces(
    build: Build, memory: ImageMemory | None, btf: BtfInfo | None, data_symbols: list[Variable] | None = None
) -> None:
    """Read every surface the inputs allow into `build` (in place).
    Without an image (BTF-only input) only the BTF-based ones are found, and
    variables only when `data_symbols` (from a kallsyms file) are given."""
    function_names = frozenset(f.name for f in build.functions)
    if memory is not None:
        build.syscalls = read_syscalls(memory)
        build.attach = read_attach(memory)
        data_symbols = object_symbols(memory.symbols) if memory.symbols else None
    native = frozenset(s.name for s in build.syscalls if s.abi == "native")
    in_modules = build.tracepoints  # assemble put the modules' events here
    build.tracepoints = read_tracepoints(memory, build.layouts, btf, function_names, native)
    seen = {t.name for t in build.tracepoints}
    for event in in_modules:  # one event per name: vmlinux's first, then modules in path order
        if event.name not in seen:
            seen.add(event.name)
            build.tracepoints.append(event)
    build.lsm_hooks = read_lsm_hooks(build.layouts, btf)
    build.kfuncs = with_modules(read_kfuncs(memory, btf), build.kfuncs)  # assemble put the modules' here
    build.btf_funcs = frozenset(btf.funcs) if btf else frozenset()
    build.variables = read_variables(data_symbols, btf) if data_symbols is not None else None
