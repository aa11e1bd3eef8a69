"""Fill a Build's other dependency surfaces (docs/concepts.md#surfaces, docs/concepts.md#attachability)
from its image: tracepoints, syscalls, LSM hooks, kfuncs and per-symbol attachability."""

from __future__ import annotations

from ingest.model import Build
from ingest.readers.btf import BtfInfo
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces.attach import read_attach
from ingest.surfaces.kfuncs import read_kfuncs
from ingest.surfaces.lsm import read_lsm_hooks
from ingest.surfaces.syscalls import read_syscalls
from ingest.surfaces.tracepoints import read_tracepoints


def add_surfaces(build: Build, memory: ImageMemory | None, btf: BtfInfo | None) -> None:
    """Read every surface the inputs allow into `build` (in place).
    Without an image (BTF-only input) only the BTF-based ones are found."""
    function_names = frozenset(f.name for f in build.functions)
    build.tracepoints = read_tracepoints(memory, build.layouts, btf, function_names)
    build.lsm_hooks = read_lsm_hooks(build.layouts, btf)
    build.kfuncs = read_kfuncs(memory, btf)
    build.btf_funcs = frozenset(btf.funcs) if btf else frozenset()
    if memory is not None:
        build.syscalls = read_syscalls(memory)
        build.attach = read_attach(memory)
