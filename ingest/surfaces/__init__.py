"""The fourth stage: a build's other dependency surfaces (docs/concepts.md#surfaces,
docs/concepts.md#attachability), read from its image: tracepoints, syscalls,
LSM hooks, kfuncs, variables and per-symbol attachability."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ingest.model import AttachFacts, Kfunc, Layout, LsmHook, Syscall, Tracepoint, Variable
from ingest.readers.btf import BtfInfo
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces.attach import read_attach
from ingest.surfaces.kfuncs import read_kfuncs
from ingest.surfaces.lsm import read_lsm_hooks
from ingest.surfaces.syscalls import read_syscalls
from ingest.surfaces.tracepoints import read_tracepoints
from ingest.surfaces.variables import object_symbols, read_variables


@dataclass(slots=True)
class Surfaces:
    """What a build exposes beyond its functions and types."""

    tracepoints: list[Tracepoint]
    syscalls: list[Syscall]
    lsm_hooks: list[LsmHook]
    kfuncs: list[Kfunc]
    attach: dict[str, AttachFacts]  # vmlinux's symbol name -> facts
    btf_funcs: frozenset[str]  # names with a BTF FUNC in vmlinux
    variables: list[Variable] | None  # None: not recorded (no symbol table)


def read_surfaces(
    memory: ImageMemory | None,
    layouts: list[Layout],
    btf: BtfInfo | None,
    function_names: Collection[str],
    module_tracepoints: Sequence[Tracepoint] = (),
    module_kfuncs: Sequence[Kfunc] = (),
    data_symbols: list[Variable] | None = None,
) -> Surfaces:
    """Every surface the inputs allow, vmlinux's joined by its modules' events and kfuncs.
    Without an image (BTF-only input) only the BTF-based ones are found, and
    variables only when `data_symbols` (from a kallsyms file) are given."""
    syscalls: list[Syscall] = []
    attach: dict[str, AttachFacts] = {}
    if memory is not None:
        syscalls = read_syscalls(memory)
        attach = read_attach(memory)
        data_symbols = object_symbols(memory.symbols) if memory.symbols else None
    native = frozenset(s.name for s in syscalls if s.abi == "native")
    return Surfaces(
        tracepoints=first_by_name(
            read_tracepoints(memory, layouts, btf, frozenset(function_names), native), module_tracepoints
        ),
        syscalls=syscalls,
        lsm_hooks=read_lsm_hooks(layouts, btf),
        kfuncs=first_by_name(read_kfuncs(memory, btf), module_kfuncs),
        attach=attach,
        btf_funcs=frozenset(btf.funcs) if btf else frozenset(),
        variables=read_variables(data_symbols, btf) if data_symbols is not None else None,
    )


class _Named(Protocol):
    name: str


_T = TypeVar("_T", bound=_Named)


def first_by_name(vmlinux: list[_T], modules: Sequence[_T]) -> list[_T]:
    """vmlinux's, then each module's (in path order) that no earlier one names:
    one per name, as for functions (docs/concepts.md#modules)."""
    seen = {item.name for item in vmlinux}
    out = list(vmlinux)
    for item in modules:
        if item.name not in seen:
            seen.add(item.name)
            out.append(item)
    return out
