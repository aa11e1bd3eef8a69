"""Which source gave each kind of fact of a build read from one image
(ingest.origins.facts.FACTS, table build_sources, docs/concepts.md#fact-sources)."""

from __future__ import annotations

from ingest.model import Build

Sources = dict[str, str | None]


def image_sources(
    build: Build,
    elf_input: bool,
    kallsyms: str | None = None,
    config: str | None = None,
    modules: str | None = None,
) -> Sources:
    """The sources of a build read from one image: a vmlinux (`elf_input`),
    else a raw BTF blob with the symbols of `kallsyms` (a path, or None); the
    `config` and `modules` tree it was given with (None: none)."""
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
        "config": config,
        "trace_events": image and f"{image} __start_ftrace_events",
        "raw_tracepoints": btf if info.has_btf else None,
        "syscalls": image and f"{image} sys_call_table",
        "ftrace": image and f"{image} __mcount_loc",
        "kprobe_blacklist": image and f"{image} _kprobe_blacklist and text areas",
        "kfuncs": btf if info.has_btf else None,
        "modules": modules,
    }
