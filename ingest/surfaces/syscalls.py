"""Syscalls (docs/concepts.md#surfaces): the slots of the image's system call tables resolved to
function symbols and normalised to the syscall name across arches and ABIs
(`__x64_sys_read`, `__arm64_compat_sys_x`, `sys_read`, `__se_sys_read` -> "read").

Slots whose function is a `*sys_ni_syscall` (under any of its names: on
ppc64el and armhf many weak `cond_syscall` aliases share its address) are not
syscalls and are dropped, as are NULL or unresolvable slots.

x86-64 since 6.9 (and the 6.1 stable backport, 6.1.85; Debian's 5.10.262
still has the tables) dispatches through switches (`x64_sys_call`,
`ia32_sys_call`, `x32_sys_call`, the BHI fix) and keeps only
`sys_call_table`, for tracing: there the ia32 and x32 numbers are in code,
and are read from the switch's compare tree (ingest.surfaces.x86_switch;
`x64_sys_call` read the same way gives exactly `sys_call_table`). Their
rows name the switch function as their table.
Names are those of the kernel's entry functions, so arch wrappers keep
theirs (`s390_read` on s390's 31-bit table, `arm_fadvise64_64`, `newuname`).
"""

from __future__ import annotations

import re

from ingest.model import Syscall
from ingest.readers.vaddr import ElfSymbol, ImageMemory
from ingest.surfaces.x86_switch import switch_cases

#: Table symbol -> ABI, across arches (arch/*/kernel/*sys_call_table*, syscall_*.c).
TABLES = {
    "sys_call_table": "native",
    "compat_sys_call_table": "compat",  # arm64, riscv, powerpc, mips, parisc
    "ia32_sys_call_table": "ia32",  # x86-64 with IA32_EMULATION, before the switch dispatch
    "x32_sys_call_table": "x32",  # x86-64 with X86_X32_ABI, idem
    "sys_call_table_emu": "compat",  # s390x: 31-bit emulation
    "sys_oabi_call_table": "oabi",  # arm with OABI_COMPAT
    "sys_call_table32": "compat",  # sparc64
    "sysn32_call_table": "n32",  # mips64
    "sys32_call_table": "o32",  # mips64
}

#: Wrapper prefixes of each table's own entry points, best first, to pick one
#: name among aliases at one address (`__x64_sys_fork` = `__ia32_sys_fork`);
#: x32 uses the x86-64 entries except for its compat ones.
_NATIVE_PREFIX: dict[str, tuple[str, ...]] = {
    "amd64": ("__x64_",),
    "i386": ("__ia32_",),
    "arm64": ("__arm64_",),
    "riscv64": ("__riscv_",),
    "s390x": ("__s390x_",),
}
_TABLE_PREFIX: dict[str, tuple[str, ...]] = {
    "ia32_sys_call_table": ("__ia32_",),
    "x32_sys_call_table": ("__x32_", "__x64_"),
    "sys_call_table_emu": ("__s390_",),
}

#: Dispatch switches read when the ABI's table is absent (x86-64, see above): function -> (abi, table it replaced).
SWITCHES = {
    "ia32_sys_call": ("ia32", "ia32_sys_call_table"),
    "x32_sys_call": ("x32", "x32_sys_call_table"),
}

_NAME = re.compile(r"^(?:__(?:x64|ia32|x32|arm64|s390x|s390|riscv|se|do)_)?(?:compat_)?sys_(.+)$")
_MAX_SLOTS = 4096  # bound for a table whose symbol has no size


def read_syscalls(mem: ImageMemory) -> list[Syscall]:
    """Every resolved, implemented slot of every known table, by table then number."""
    out: list[Syscall] = []
    for table, abi in TABLES.items():
        sym = mem.symbol(table)
        if sym is None or sym.kind not in ("object", "notype"):
            continue
        prefixes = _TABLE_PREFIX.get(table) or _NATIVE_PREFIX.get(mem.image.arch, ())
        for number, target in enumerate(table_slots(mem, sym)):
            slot = _resolve(mem, target, prefixes)
            if slot is None:
                continue
            name = normalise(slot)
            if name == "ni_syscall":
                continue
            out.append(Syscall(table=table, abi=abi, number=number, name=name, symbol=slot))
    if mem.image.arch == "amd64":
        out += _switch_syscalls(mem)
    return out


def _switch_syscalls(mem: ImageMemory) -> list[Syscall]:
    """The ia32/x32 syscalls of the x86-64 dispatch switches, where their tables are gone."""
    out: list[Syscall] = []
    for function, (abi, table) in SWITCHES.items():
        sym = mem.symbol(function)
        if sym is None or sym.kind != "func" or mem.symbol(table) is not None:
            continue
        prefixes = _TABLE_PREFIX[table]
        for number, target in sorted(switch_cases(mem, sym).items()):
            slot = _resolve(mem, target, prefixes)
            if slot is None or normalise(slot) == "ni_syscall":
                continue
            out.append(Syscall(table=function, abi=abi, number=number, name=normalise(slot), symbol=slot))
    return out


def table_slots(mem: ImageMemory, table: ElfSymbol) -> list[int]:
    """The table's pointers: st_size bytes of them; when the size is 0 (a
    bare assembler label), up to the next symbol of its section and while
    they point at functions."""
    size = table.size or _distance_to_next_symbol(mem, table)
    slots = []
    for address in range(table.address, table.address + size, mem.pointer_size):
        target = mem.pointer(address) or 0
        if not table.size and (not target or mem.function_at(target) is None):
            break
        slots.append(target)
    return slots


def _distance_to_next_symbol(mem: ImageMemory, table: ElfSymbol) -> int:
    """Bytes from `table` to the next symbol of its section, at most _MAX_SLOTS pointers."""
    limit = table.address + _MAX_SLOTS * mem.pointer_size
    following = (s.address for s in mem.symbols if s.section == table.section and s.address > table.address)
    return min(limit, min(following, default=limit)) - table.address


def _resolve(mem: ImageMemory, target: int, prefixes: tuple[str, ...]) -> str | None:
    """The best function symbol name for a slot pointing at `target` (on ELFv1
    ppc64 a descriptor in `.opd`, whose symbol is the function's plain name);
    a `*sys_ni_syscall` alias wins so that unimplemented slots are recognised."""
    if not target:
        return None
    names = [s.name for s in mem.symbols_at(target) if s.kind == "func"]
    if not names:
        func = mem.function_at(target)
        names = [func.name] if func else []
    if not names:
        return None
    ni = [n for n in names if normalise(n) == "ni_syscall"]
    return min(ni or names, key=lambda n: _rank(n, prefixes))


def _rank(name: str, prefixes: tuple[str, ...]) -> tuple:
    """Sort key of alias names: plain names, the table's wrapper prefixes in
    order, entry points before the inner `__do_sys_`/`__se_sys_` bodies, then by name."""
    preferred = next((i for i, p in enumerate(prefixes) if name.startswith(p)), len(prefixes))
    return ("." in name, preferred, name.startswith(("__do_", "__se_")), _NAME.match(name) is None, name)


def normalise(symbol: str) -> str:
    """The syscall name of an entry symbol: "__x64_sys_read" -> "read",
    "__ia32_compat_sys_fcntl64" -> "fcntl64"; other names are kept as they are
    (compiler suffixes such as ".localalias" dropped)."""
    base = symbol.lstrip(".").split(".", 1)[0]  # ELFv1 ppc64 code symbols start with "."
    m = _NAME.match(base)
    return m.group(1) if m else base
