"""Which source gave each kind of fact of a build, and which kinds are unknown
(table `build_sources`, docs/concepts.md#fact-sources).

Every ingest records one row per kind in FACTS: the source it came from
("vmlinux DWARF", "/proc/kallsyms", "tracefs available_filter_functions"),
or NULL when the input cannot tell. `kernsurf check` reads "not recorded"
from it where the rows alone cannot say (a kprobe blacklist nobody read).
"""

from __future__ import annotations

from collections.abc import Mapping

from ingest.model import Build

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

Sources = dict[str, str | None]


def image_sources(build: Build, elf_input: bool, kallsyms: str | None = None) -> Sources:
    """The sources of a build read from one image: a vmlinux (`elf_input`),
    else a raw BTF blob with the symbols of `kallsyms` (a path, or None)."""
    info = build.info
    btf = "vmlinux .BTF" if elf_input else "BTF blob"
    typed = btf if info.has_btf else "vmlinux DWARF" if info.has_dwarf else None
    symbols = ("vmlinux symtab" if elf_input else kallsyms) if info.has_symtab else None
    image = "vmlinux" if elf_input else None
    return {
        "build_id": "vmlinux .note.gnu.build-id" if elf_input and info.build_id != info.sha256 else None,
        "release": ("vmlinux linux_banner" if elf_input else "given") if info.release else None,
        "compiler": "vmlinux .comment" if info.compiler else None,
        "types": typed,
        "prototypes": typed,
        "instances": "vmlinux DWARF" if info.has_dwarf else None,
        "symbols": symbols,
        "addresses": symbols,
        "variables": symbols if build.variables is not None else None,
        "config": None,
        "trace_events": image and f"{image} __start_ftrace_events",
        "raw_tracepoints": btf if info.has_btf else None,
        "syscalls": image and f"{image} sys_call_table",
        "ftrace": image and f"{image} __mcount_loc",
        "kprobe_blacklist": image and f"{image} _kprobe_blacklist and text areas",
        "kfuncs": btf if info.has_btf else None,
        "modules": None,
    }


def unknown(sources: Mapping[str, str | None]) -> list[str]:
    """The kinds of fact no source gave, in FACTS order."""
    return [kind for kind in FACTS if sources.get(kind) is None]
