"""kernsurf: what a Linux kernel build exposes, and how it changes between builds.

The pipeline (docs/architecture.md), one package per stage:

    archive/   fetch a debug image from a distribution archive into the cache
    readers/   bytes in, records out: ELF, virtual-address reads, DWARF, BTF, kallsyms
    vmlinux/   read an image into VmlinuxFacts           (stage 1)
    modules/   read every module of its tree, streamed   (stage 2)
    join/      one status row per function name: Joined  (stage 3)
    surfaces/  tracepoints, syscalls, LSM hooks, kfuncs, config, attachability (stage 4)
    db/        store the Build in one transaction        (stage 5; pipeline runs 1-5)
    catalog/   a manifest's builds fetched and ingested, groups and diffs stored
    origins/   builds from the running system and BTFHub archives, through the same stages
    queries/   the read layer: every SELECT, returning typed rows
    changes/   differences between two builds; bpf/ `kernsurf check`
    web/       the pages Datasette serves (plugins/ holds only the hooks)
    cli        the `kernsurf` command, one library call per command

The library API below is what this package promises to keep; everything else
may move. Names resolve lazily, so `import ingest` stays cheap:

    import ingest
    result = ingest.ingest("vmlinux", "kernels.db", ingest.Identity(label="6.1"))
    conn = ingest.connect("kernels.db")
    changes = ingest.compare(conn, "6.1", "6.12")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ingest.errors import KernsurfError

#: Exported name -> (module, attribute).
_EXPORTS = {
    "Identity": ("ingest.pipeline", "Identity"),
    "IngestResult": ("ingest.pipeline", "IngestResult"),
    "ingest": ("ingest.pipeline", "ingest"),
    "connect": ("ingest.db", "connect"),
    "open_readonly": ("ingest.db", "open_readonly"),
    "load_manifest": ("ingest.catalog.manifest", "load"),
    "build": ("ingest.catalog.batch", "build"),
    "compare": ("ingest.changes.diff", "compare"),
    "read_bpf_object": ("ingest.bpf.objects", "read_bpf_object"),
    "parse_spec": ("ingest.bpf.spec", "parse_spec"),
    "evaluate": ("ingest.bpf.check", "evaluate"),
    "search_index": ("ingest.web.serve", "search_index"),
}

__all__ = ["KernsurfError", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import an exported name on first use."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
