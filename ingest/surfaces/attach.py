"""Attachability of every function symbol (docs/concepts.md#attachability): whether ftrace can
patch it (it has a `__mcount_loc` record) and why kprobes would refuse it.

ftrace records: the pointer array `__start_mcount_loc`..`__stop_mcount_loc`.
The same range holds the `-fpatchable-function-entry` records on arm64,
riscv and ppc64, and the `-mfentry`/`-mrecord-mcount` ones on x86 and s390.
Where a record points differs by arch and build (all seen in Debian images):
x86 func+0, or func+4 after an IBT `endbr64`; arm64 with CALL_OPS the first of
two NOPs *before* the symbol (func-8); ppc64 the `bl _mcount` after the
global-entry prologue (func+8/+12); riscv and s390 func+0. A record is thus
given to the function holding it, else to the function starting within
`_PRE_ENTRY` bytes after it. Records for overridden weak functions are zeroed
or point nowhere since 6.14 (sorttable); they are skipped.

kprobes: mirrors `within_kprobe_blacklist()` and `check_kprobe_address_safe()`:
the NOKPROBE_SYMBOL list, whole-symbol areas the kernel blacklists at boot
(`populate_kprobe_blacklist()` plus each arch's `arch_populate_kprobe_blacklist()`
/ `arch_within_kprobe_blacklist()`), and init text (freed after boot, so
`core_kernel_text()` fails). Not covered: jump-label/static-call sites,
`find_bug()` and instruction decoding, which refuse single addresses only.

Init text (`_sinittext`..`_einittext`) has `__mcount_loc` records too, but
ftrace drops them when the kernel frees that memory after boot
(`ftrace_free_init_mem()`): such functions are not in
`available_filter_functions`, and read here as notrace (ftrace 0). A module's
`.init*` text is freed the same way once its init has run (`ftrace_free_mem()`
in `do_init_module()`).

Modules: the loader reads a module's call sites from the one section that
`FTRACE_CALLSITE_SECTION` names (include/linux/ftrace.h):
`__patchable_function_entries` when the build has
`CONFIG_FTRACE_MCOUNT_USE_PATCHABLE_FUNCTION_ENTRY` (Debian's arm64, riscv64
since 6.6 and parisc kernels), else `__mcount_loc`. A module may carry both
(x86's `CONFIG_CALL_PADDING` compiles with `-fpatchable-function-entry` too):
only the one the loader reads counts. Which one is decided from the image:
its config when that says (the option exists since 5.10), else each module's
own sections (`__mcount_loc` when it has one).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

from ingest.model import AttachFacts
from ingest.readers.vaddr import ElfSymbol, ImageMemory

#: Bytes before a symbol where its patchable-entry record may sit, per arch
#: (arm64 CALL_OPS: 2 NOPs). Elsewhere a record outside every symbol belongs to
#: an overridden weak function whose code stayed without a name.
_PRE_ENTRY = {"arm64": 8}

#: Areas every arch blacklists as whole symbols: (start marker, end marker, reason).
_COMMON_AREAS = (
    ("__kprobes_text_start", "__kprobes_text_end", ".kprobes.text"),
    ("__noinstr_text_start", "__noinstr_text_end", "noinstr"),  # since 5.8
)

#: Arch-specific areas (arch_populate_kprobe_blacklist / arch_within_kprobe_blacklist).
#: arm64: idmap text left that list when it moved to .rodata.text (6.x), where
#: kprobes refuse it anyway (not kernel text); hyp idmap text is skipped at run
#: time on a VHE host (is_kernel_in_hyp_mode), so it is "may refuse" there.
_ARCH_AREAS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "amd64": (("__entry_text_start", "__entry_text_end", "entry text"),),
    "i386": (("__entry_text_start", "__entry_text_end", "entry text"),),
    "arm64": (
        ("__entry_text_start", "__entry_text_end", "entry text"),
        ("__irqentry_text_start", "__irqentry_text_end", "irqentry text"),
        ("__idmap_text_start", "__idmap_text_end", "idmap text"),
        ("__hyp_text_start", "__hyp_text_end", "hyp text"),
        ("__hyp_idmap_text_start", "__hyp_idmap_text_end", "hyp idmap text"),
    ),
    "armhf": (
        ("__entry_text_start", "__entry_text_end", "entry text"),
        ("__irqentry_text_start", "__irqentry_text_end", "irqentry text"),
        ("__idmap_text_start", "__idmap_text_end", "idmap text"),
    ),
    # powerpc's arch_within_kprobe_blacklist: the exception vectors at the head.
    "ppc64el": (("_stext", "__head_end", "exception vectors"),),
    "ppc64": (("_stext", "__head_end", "exception vectors"),),
}

_INIT_TEXT = ("_sinittext", "_einittext", "init text")

#: The call-site tables, as the linker markers around them are named (readers.vaddr.MODULE_TABLES).
MCOUNT_LOC = "mcount_loc"
PATCHABLE_ENTRIES = "patchable_function_entries"
#: The config options (5.10+, kernel/trace/Kconfig) that choose `__mcount_loc` for the loader.
_MCOUNT_OPTIONS = (
    "CONFIG_FTRACE_MCOUNT_USE_CC",
    "CONFIG_FTRACE_MCOUNT_USE_OBJTOOL",
    "CONFIG_FTRACE_MCOUNT_USE_RECORDMCOUNT",
)


def callsite_table(config: Mapping[str, str]) -> str | None:
    """The table a build's module loader reads ftrace call sites from
    (FTRACE_CALLSITE_SECTION), by its kernel config; None when the config does
    not say (no config, or a kernel before 5.10)."""
    if config.get("CONFIG_FTRACE_MCOUNT_USE_PATCHABLE_FUNCTION_ENTRY") == "y":
        return PATCHABLE_ENTRIES
    if any(config.get(option) == "y" for option in _MCOUNT_OPTIONS):
        return MCOUNT_LOC
    return None


def module_callsite_table(mem: ImageMemory, decided: str | None) -> str:
    """The table of one module the loader reads: `decided` by the build's config,
    else `__mcount_loc` when the module has one, else its patchable entries."""
    if decided is not None:
        return decided
    return MCOUNT_LOC if mem.range(f"__start_{MCOUNT_LOC}", f"__stop_{MCOUNT_LOC}") else PATCHABLE_ENTRIES


class FunctionIndex:
    """The function symbols read_attach reports on, sorted by address."""

    def __init__(self, mem: ImageMemory) -> None:
        self.pre_entry = _PRE_ENTRY.get(mem.image.arch, 0)
        self.syms = sorted(
            (s for s in mem.symbols if s.kind == "func" and not s.name.startswith("__pfx_")),
            key=lambda s: s.address,
        )
        self.starts = [s.address for s in self.syms]

    def owner(self, address: int) -> int | None:
        """Start address of the function holding `address`, else of the one
        starting at most `pre_entry` bytes after it."""
        i = bisect.bisect_right(self.starts, address) - 1
        j = i
        while j >= 0 and j > i - 8:  # aliases and zero-size symbols share a start
            s = self.syms[j]
            if s.address <= address < s.address + max(s.size, 1):
                return s.address
            j -= 1
        if i + 1 < len(self.starts) and self.starts[i + 1] - address <= self.pre_entry:
            return self.starts[i + 1]
        return None

    def starting_in(self, start: int, end: int) -> set[int]:
        """Start addresses of the functions starting in [start, end)."""
        lo = bisect.bisect_left(self.starts, start)
        hi = bisect.bisect_left(self.starts, end)
        return set(self.starts[lo:hi])


def read_attach(mem: ImageMemory, callsites: str = MCOUNT_LOC) -> dict[str, AttachFacts]:
    """Symbol name -> AttachFacts for every STT_FUNC symbol except `__pfx_*`,
    the ftrace records read from the `callsites` table (vmlinux: mcount_loc,
    which holds both kinds). A name several local symbols share is attachable
    if any of them is: ftrace if any has a record, kprobe_blocked only when all
    are refused (the reason of the lowest-addressed one)."""
    funcs = FunctionIndex(mem)
    traced = ftrace_entries(mem, funcs, callsites) - init_functions(mem, funcs)
    blocked = kprobe_blocked(mem, funcs)
    out: dict[str, AttachFacts] = {}
    for s in funcs.syms:
        facts = AttachFacts(s.address in traced, blocked.get(s.address))
        seen = out.get(s.name)
        if seen is not None:
            both = seen.kprobe_blocked and facts.kprobe_blocked
            facts = AttachFacts(seen.ftrace or facts.ftrace, seen.kprobe_blocked if both else None)
        out[s.name] = facts
    return out


def init_functions(mem: ImageMemory, funcs: FunctionIndex | None = None) -> set[int]:
    """Start addresses of the functions in init text (freed after boot; a
    module's `.init*` sections, freed once it is loaded)."""
    funcs = funcs or FunctionIndex(mem)
    if mem.image.linked is not None:
        return {s.address for s in funcs.syms if (s.section or "").startswith(".init")}
    span = mem.range(*_INIT_TEXT[:2])
    return funcs.starting_in(*span) if span else set()


def mcount_records(mem: ImageMemory, table: str = MCOUNT_LOC) -> list[int]:
    """The raw addresses of a call-site table (zeroed entries dropped)."""
    span = mem.range(f"__start_{table}", f"__stop_{table}")
    if span is None:
        return []
    return [a for a in mem.pointers(*span) if a]


def ftrace_entries(mem: ImageMemory, funcs: FunctionIndex | None = None, table: str = MCOUNT_LOC) -> set[int]:
    """Start addresses of the functions that have an ftrace record in `table`."""
    funcs = funcs or FunctionIndex(mem)
    out = set()
    for rec in mcount_records(mem, table):
        start = funcs.owner(rec)
        if start is not None:
            out.add(start)
    return out


def kprobe_blocked(mem: ImageMemory, funcs: FunctionIndex | None = None) -> dict[int, str]:
    """Function start address -> why kprobes refuse it (first reason found)."""
    funcs = funcs or FunctionIndex(mem)
    out: dict[int, str] = {}
    for entry in _blacklist_entries(mem):
        start = funcs.owner(entry)
        if start is not None:
            out.setdefault(start, "NOKPROBE_SYMBOL")
    for first, last, reason in _COMMON_AREAS + _ARCH_AREAS.get(mem.image.arch, ()) + (_INIT_TEXT,):
        span = mem.range(first, last)
        if span is not None:
            for start in funcs.starting_in(*span):
                out.setdefault(start, reason)
    if mem.image.linked is not None:  # a module: its init text, freed once loaded
        for start in init_functions(mem, funcs):
            out.setdefault(start, _INIT_TEXT[2])
    return out


def _blacklist_entries(mem: ImageMemory) -> list[int]:
    """Addresses in `__start_kprobe_blacklist`..`__stop_kprobe_blacklist`;
    ELFv1 ppc64 stores function descriptors (dereference_symbol_descriptor)."""
    span = mem.range("__start_kprobe_blacklist", "__stop_kprobe_blacklist")
    if span is None:
        return []
    entries = [a for a in mem.pointers(*span) if a]
    if mem.image.arch == "ppc64" and mem.image.elf.get_section_by_name(".opd") is not None:
        entries = [mem.pointer(a) or a for a in entries]
    return entries


def function_symbols(mem: ImageMemory) -> list[ElfSymbol]:
    """The function symbols read_attach reports on, by address."""
    return FunctionIndex(mem).syms
