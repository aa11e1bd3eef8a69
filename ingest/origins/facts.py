"""The kinds of fact a build records a source for, and which are unknown
(table `build_sources`, docs/concepts.md#fact-sources).

Every ingest records one row per kind in FACTS: the source it came from
("vmlinux DWARF", "/proc/kallsyms", "tracefs available_filter_functions"),
or NULL when the input cannot tell (ingest.vmlinux.sources for an image,
ingest.origins.running for the running system). `kernsurf check` reads "not
recorded" from it where the rows alone cannot say (a kprobe blacklist nobody read).
"""

from __future__ import annotations

from collections.abc import Mapping

#: Kind of fact -> what it covers.
FACTS: dict[str, str] = {
    "build_id": "the ELF GNU build-id (unknown: the sha256 of the input keys the build)",
    "release": "the kernel release (uname -r)",
    "compiler": "the compiler that built the kernel",
    "types": "struct, union and enum layouts",
    "prototypes": "function prototypes",
    "instances": "function instances: inlining, callers, declaration sites (DWARF only)",
    "symbols": "function symbols",
    "addresses": "symbol addresses",
    "variables": "kernel variables (data symbols)",
    "config": "the kernel config",
    "trace_events": "trace events with their system and format",
    "raw_tracepoints": "raw tracepoints (btf_trace_<name> typedefs)",
    "syscalls": "the syscall tables",
    "ftrace": "which functions ftrace can patch (fentry, fexit)",
    "kprobe_blacklist": "which functions kprobes refuse",
    "kfuncs": "kfuncs",
    "modules": "loadable modules",
}


def unknown(sources: Mapping[str, str | None]) -> list[str]:
    """The kinds of fact no source gave, in FACTS order."""
    return [kind for kind in FACTS if sources.get(kind) is None]
