"""Kernel variables (docs/concepts.md#surfaces), what `ksym` externs of BPF
programs resolve against: the image's STT_OBJECT symbols (or a kallsyms /
System.map's data symbols) plus the BTF VARs.

libbpf resolves an untyped extern (`extern const void bpf_prog_active __ksym`)
through /proc/kallsyms (CONFIG_KALLSYMS_ALL: every data symbol), and refuses
a name that has several addresses; a typed one (`extern struct rq runqueues
__ksym`) needs a BTF VAR of that name, which pahole emits for per-CPU
variables only (the `.data..percpu` DATASEC). A variable is per-CPU when its
section or BTF DATASEC is `.data..percpu`.

Symbols whose names are not C identifiers (`__func__.12`, `__key.3`: the
compiler's function-local statics) are left out: no extern can name them.
One row per symbol: a name may have several (file-scope statics).
"""

from __future__ import annotations

from collections.abc import Iterable

from ingest.model import Variable
from ingest.readers.btf import BtfInfo
from ingest.readers.vaddr import ElfSymbol

PERCPU = ".data..percpu"


def read_variables(symbols: Iterable[Variable], btf: BtfInfo | None) -> list[Variable]:
    """The data symbols (address, size, binding, section known) completed with
    BTF VAR facts; BTF VARs no symbol names are added without an address.
    Sorted by name, then address."""
    btf_vars, btf_percpu = _btf_vars(btf)
    out: list[Variable] = []
    named: set[str] = set()
    for v in symbols:
        if "." in v.name or not v.name:
            continue
        named.add(v.name)
        per_cpu = v.per_cpu or v.section == PERCPU or v.name in btf_percpu
        out.append(v._replace(per_cpu=per_cpu, btf_var=v.name in btf_vars))
    for name in sorted(btf_vars - named):
        out.append(
            Variable(
                name=name, address=None, size=None, binding=None, section=None,
                per_cpu=name in btf_percpu, btf_var=True,
            )
        )  # fmt: skip
    out.sort(key=lambda v: (v.name, v.address is None, v.address or 0))
    return out


def _btf_vars(btf: BtfInfo | None) -> tuple[set[str], set[str]]:
    """(every BTF VAR name, those the per-CPU DATASEC places)."""
    if btf is None:
        return set(), set()
    names = {v.name for v in btf.var_ids.values()}
    percpu = {btf.var_ids[e.type_id].name for e in btf.datasecs.get(PERCPU, []) if e.type_id in btf.var_ids}
    return names, percpu


def object_symbols(symbols: Iterable[ElfSymbol]) -> list[Variable]:
    """Variables from the image's STT_OBJECT symbols."""
    return [
        Variable(
            name=s.name,
            address=s.address,
            size=s.size,
            binding=s.binding,
            section=s.section,
            per_cpu=False,
            btf_var=False,
        )  # fmt: skip
        for s in symbols
        if s.kind == "object"
    ]
