"""Read a compiled BPF ELF object (clang -target bpf -g) into what it needs
from a kernel: the attach targets its program sections name, the types,
fields and enum values of its CO-RE relocations (.BTF.ext), its kfunc / ksym
/ kconfig externs, its struct_ops maps, map types and helper calls.

Pure Python on pyelftools and our BTF readers (ingest.readers.btf and
btf_ext); nothing is run. Sections are classified with libbpf's table
(ingest.bpf.sections).
Naming, which the evaluator matches against a kernel database:

    kind            name                          attach            detail
    function        kernel symbol, exact          kprobe, kretprobe None
                    ("do_filp_open.isra.0"; a "+offset" is dropped)
    function        BTF function                  fentry, fexit,    None, "sleepable" (.s),
                                                  fmod_ret          "module:<mod>" for
                                                                    SEC("fentry/mod:fn"),
                                                                    or both, space-separated
    function        glob pattern ("tcp_*")        kprobe.multi,     "glob"
                                                  kretprobe.multi, kprobe.session
    iter            "task": the kernel needs      iter              None or "sleepable"
                    BTF FUNC bpf_iter_task
    syscall         "openat" (no __x64_sys_)      ksyscall, kretsyscall  None
    tracepoint      event "sched_switch"          tracepoint        its system, "sched"
    raw_tracepoint  "sched_wakeup"                raw_tracepoint,   None, or "writable"
                    (tp_btf: BTF typedef          tp_btf            (raw_tp.w)
                    btf_trace_<name>)
    lsm_hook        "file_open" (BTF FUNC         lsm, lsm_cgroup   None or "sleepable"
                    bpf_lsm_<name>)
    struct_ops      struct "tcp_congestion_ops"   struct_ops        None
    field           "task_struct.mm.total_vm"     None              CO-RE relocation kind,
                    "tcp_congestion_ops.ssthresh"                   or "struct_ops" (a member
                                                                    a struct_ops map sets)
    struct, enum,   "task_struct", "bpf_attr",    None              see below
    type            "pid_type", "kernel_cap_t"
    enum_value      "pid_type::PIDTYPE_TGID"      None              CO-RE relocation kind
    alternatives    "task_struct.__state|         None              None; Dependency.members
                    task_struct.state"                              (ingest.bpf.alternatives)
    kfunc           "bpf_task_acquire"            None              "weak" or None
    ksym            "init_task"                   None              "weak" or None
    kconfig         "CONFIG_HZ"                   None              "weak" or None
    map_type        "BPF_MAP_TYPE_RINGBUF"        None              None
                    (enum bpf_map_type enumerator; "map type 40" past our table)
    helper          "bpf_loop"                    None              "BPF_FUNC_loop", the
                    ("helper 250" past our table)                   enum bpf_func_id enumerator

A dependency's attach is the base attach type; Program.attach keeps the
section's own spelling, canonicalised ("fentry.s", "raw_tracepoint.w" for
raw_tp.w, "tracepoint" for tp). "struct" stands for a struct or a union (C
code names either; the kernel must have an aggregate of that name).

Field paths: the root type's essential name (libbpf's: "task_struct___old"
-> "task_struct"), then each named member; members of anonymous structs and
unions are stepped through but not named ("sk_buff.len"), array indexes are
dropped ("task_struct.comm" for comm[0]). Member names are kept exactly.
Struct, enum and enum value names are essential names. "type" is any other
named kind (typedef, int, ...): "kernel_cap_t".

CO-RE relocation kinds: "field_byte_offset", "field_byte_size",
"field_exists", "field_signed", "field_lshift_u64", "field_rshift_u64",
"type_id_target", "type_exists", "type_size", "type_matches",
"enumval_exists", "enumval_value" (type_id_local needs nothing from the
kernel and gives no dependency). The *_exists kinds are probes: the program
copes when the answer is no. A field relocation gives two dependencies: the
field (detail: its kind) and the struct holding it (detail None, or
"field_exists" when the relocation only probes). Likewise an enum value
relocation gives the enum_value (detail: its kind) and the enum (None or
"enumval_exists"). A type relocation gives the type, detail its kind.

A dependency appears once per (kind, name, attach, detail), with the sorted
union of the programs that need it. Code is attributed to programs through
bpf-to-bpf calls and callback addresses, so a CO-RE read in a .text
subprogram counts for every program that reaches it; programs is () when no
program does (libbpf would not load that code) or when the dependency is
not tied to code (a kfunc declared but never called).
"""

from __future__ import annotations

import bisect
import io
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Symbol, SymbolTableSection

from ingest.bpf import alternatives, sections
from ingest.bpf.abi import helper_name, map_type_name
from ingest.bpf.alternatives import Access
from ingest.bpf.keys import Key
from ingest.errors import BadBpfObject, BadBtf
from ingest.model import CType
from ingest.readers import btf_ext
from ingest.readers import btf_format as F
from ingest.readers.btf import BtfInfo, read_btf, string_section
from ingest.types import cdecl

__all__ = ["BadBpfObject", "BpfObject", "Dependency", "Program", "parse_bpf_object", "read_bpf_object"]


@dataclass(frozen=True, slots=True)
class Dependency:
    """One thing the object needs from the kernel (see the module docstring)."""

    kind: str  # function, iter, syscall, tracepoint, raw_tracepoint,
    # lsm_hook, struct_ops, struct, enum, type, field,
    # enum_value, kfunc, ksym, kconfig, map_type, helper
    name: str
    attach: str | None  # program attach type for attach targets; None otherwise
    programs: tuple[str, ...]  # programs that need it, sorted; () when no program reaches it
    detail: str | None  # relocation kind, tracepoint system, "glob", "weak", ...
    # A CO-RE field: the program's type of the member read (cdecl.type_kind,
    # "enum NAME" for an enum), for libbpf's kind check; None: not known.
    local: str | None = None
    # kind "alternatives" (ingest.bpf.alternatives): the members, tried in
    # order, each a conjunction of field / struct / enum_value dependencies.
    members: tuple[tuple[Dependency, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Program:
    """One BPF program: an ELF function symbol in a program section."""

    name: str
    section: str  # ELF section, e.g. "kprobe/do_sys_openat2"
    attach: str | None  # canonical section prefix ("tp" -> "tracepoint"); None: unknown
    target: str | None  # what the section names: "do_filp_open.isra.0" (kprobe
    # offset dropped), "sched/sched_switch", "tcp_*", "task"
    # (iter), "mod:fn" (fentry); "struct.member" for struct_ops
    # (from the map); None when no kernel name is involved
    # (uprobe, xdp, freplace, a bare SEC("kprobe"), unknown)


@dataclass(slots=True)
class BpfObject:
    """What read_bpf_object found."""

    path: str
    programs: list[Program]  # in section order, then by address
    dependencies: list[Dependency]  # deduplicated, sorted by (kind, name, attach, detail)
    unknown_sections: list[str]  # executable sections with an unknown prefix (not fatal)


EM_BPF = 247
_SHF_EXECINSTR = 0x4
INSN_SIZE = 8
#: (program, function it reaches by calls) pairs one object may have: the work of
#: attributing uses grows with their number, and real objects have a few thousand.
MAX_REACH = 1_000_000

# enum bpf_core_relo_kind values, by what they ask
_FIELD_RELOS = frozenset(range(0, 6))  # field_byte_offset .. field_rshift_u64
_TYPE_ID_LOCAL = 6
_PROBES = frozenset((2, 8, 10))  # field_exists, type_exists, enumval_exists
_ENUMVAL_RELOS = frozenset((10, 11))

# BPF instructions
_OP_CALL = 0x85  # BPF_JMP | BPF_CALL
_OP_LD_IMM64 = 0x18  # BPF_LD | BPF_IMM | BPF_DW
_PSEUDO_CALL = 1

# BTF kind -> dependency kind: "struct" stands for struct or union (the name
# is what the kernel must have); forward declarations count as what they declare.
_AGGREGATE_KIND = {"struct": "struct", "union": "struct", "enum": "enum"}
_MODIFIERS = frozenset(("const", "volatile", "restrict", "atomic"))


Func = tuple[int, int]  # (section index, start offset)


def read_bpf_object(path: Path) -> BpfObject:
    """Read the BPF object at `path`; raise BadBpfObject when it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadBpfObject(f"cannot read {path}: {e.strerror}") from None
    return parse_bpf_object(data, str(path))


def parse_bpf_object(data: bytes, path: str = "<bytes>") -> BpfObject:
    """Read a BPF object from its bytes; `path` only labels the result."""
    if not data:
        raise BadBpfObject(f"{path} is empty; compile the program with clang -target bpf -g -c")
    if data[:4] != b"\x7fELF":
        raise BadBpfObject(f"{path} is not an ELF file; compile the program with clang -target bpf -g -c")
    try:
        elf = ELFFile(io.BytesIO(data))
        machine = elf.header.e_machine
        if machine not in ("EM_BPF", EM_BPF):
            raise BadBpfObject(
                f"{path} is not a BPF object (e_machine {machine}); compile with clang -target bpf"
            )
        return _Reader(elf, data, path).read()
    except BadBpfObject:
        raise
    except BadBtf as e:
        raise BadBpfObject(f"{path} has malformed BTF ({e}); rebuild it with clang -target bpf -g") from None
    except (ELFError, struct.error, ValueError, IndexError, KeyError, UnicodeDecodeError, OverflowError) as e:
        raise BadBpfObject(f"{path} is truncated or corrupt ({type(e).__name__}: {e}); rebuild it") from None


class _Reader:
    """One pass over one object; read() returns the BpfObject."""

    def __init__(self, elf: ELFFile, data: bytes, path: str) -> None:
        self.elf, self.data, self.path = elf, data, path
        self.order = "<" if elf.little_endian else ">"
        self.deps: dict[Key, set[str]] = {}
        self.uses: list[tuple[int, int, Key]] = []  # (section index, byte offset, dependency)
        self.core_uses: list[tuple[int, int, Access]] = []  # CO-RE relocations, grouped per program

    # -- the whole object ---------------------------------------------------

    def read(self) -> BpfObject:
        elf = self.elf
        self.sections = [elf.get_section(i) for i in range(elf.num_sections())]
        self._check_bounds()
        names = [s.name for s in self.sections]
        self.by_name = {n: i for i, n in enumerate(names) if n}
        btf_index = self.by_name.get(".BTF")
        if btf_index is None:
            raise BadBpfObject(f"{self.path} has no BTF (.BTF section); compile with -g")
        self.btf_raw = self.sections[btf_index].data()
        self.btf: BtfInfo = read_btf(self.btf_raw)
        self.btf_strings = string_section(self.btf_raw)
        self.symbols = self._symbols()
        # (name, section) -> value of the first such symbol, for _var_offset
        self.var_offsets = {(sym.name, sym["st_shndx"]): sym["st_value"] for sym in reversed(self.symbols)}
        self.funcs = self._functions()
        self.relocs = self._relocations()

        programs: list[Program] = []
        unknown: list[str] = []
        self.program_funcs: dict[Func, str] = {}
        for idx, sec in enumerate(self.sections):
            if (
                not (sec["sh_flags"] & _SHF_EXECINSTR)
                or sec["sh_type"] != "SHT_PROGBITS"
                or sec["sh_size"] == 0
            ):
                continue  # not executable code
            if sec.name == ".text":
                continue  # subprograms, reached through calls
            raw = sec.name[1:] if sec.name.startswith("?") else sec.name  # "?": not autoloaded
            attach, what, target = sections.classify(raw)
            if attach is None:
                unknown.append(sec.name)
            dep = None
            if attach is not None and what is not None and what != "struct_ops" and target:
                dep = _target_dep(attach, what, target)
                if what == "function":
                    target = dep.name  # kprobe "sym+off": the offset is not a kernel name
            for start, name in sorted(self.funcs.get(idx, {}).items()):
                programs.append(
                    Program(name=name, section=sec.name, attach=attach, target=target if dep else None)
                )
                self.program_funcs[(idx, start)] = name
                if dep is not None:
                    self._add(dep, (name,))

        self._struct_ops(programs)
        self._maps()
        self._core_relos()
        self._externs()
        self._attribute()
        deps = [_dependency(key, tuple(sorted(p))) for key, p in self.deps.items()]
        deps.sort(key=lambda d: (d.kind, d.name, d.attach or "", d.detail or ""))
        return BpfObject(path=self.path, programs=programs, dependencies=deps, unknown_sections=unknown)

    def _check_bounds(self) -> None:
        size = len(self.data)
        for sec in self.sections:
            if sec["sh_type"] != "SHT_NOBITS" and sec["sh_offset"] + sec["sh_size"] > size:
                raise BadBpfObject(
                    f"{self.path} is truncated: section {sec.name or '#?'} ends at byte "
                    f"{sec['sh_offset'] + sec['sh_size']} of a {size}-byte file; rebuild it"
                )

    def _add(self, key: Key, programs: tuple[str, ...] = ()) -> None:
        self.deps.setdefault(key, set()).update(programs)

    # -- symbols and functions ----------------------------------------------

    def _symbols(self) -> list[Symbol]:
        symtab = next((s for s in self.sections if isinstance(s, SymbolTableSection)), None)
        return list(symtab.iter_symbols()) if symtab is not None else []

    def _functions(self) -> dict[int, dict[int, str]]:
        """Section index -> {start offset: name} of its STT_FUNC symbols."""
        out: dict[int, dict[int, str]] = {}
        self.func_ends: dict[Func, int] = {}
        for sym in self.symbols:
            shndx = sym["st_shndx"]
            if sym["st_info"]["type"] == "STT_FUNC" and isinstance(shndx, int):
                out.setdefault(shndx, {})[sym["st_value"]] = sym.name
                self.func_ends[(shndx, sym["st_value"])] = sym["st_value"] + sym["st_size"]
        self.func_starts = {sec: sorted(starts) for sec, starts in out.items()}
        return out

    def _func_at(self, sec: int, off: int) -> Func | None:
        """The function of section `sec` whose code holds byte `off` (a binary
        search: a scan per call was quadratic, 24 000 functions took 22 s)."""
        starts = self.func_starts.get(sec, ())
        k = bisect.bisect_right(starts, off)
        if k == 0:
            return None
        best = starts[k - 1]
        end = self.func_ends[(sec, best)]
        return (sec, best) if off < end or end == best else None

    # -- program attribution through bpf-to-bpf calls -------------------------

    def _attribute(self) -> None:
        """Give each use found inside code (CO-RE relocations, extern references)
        to the programs that run that code: their own section, or subprograms
        they reach through calls."""
        reach = self._walk_code()
        for sec, off, key in self.uses:
            func = self._func_at(sec, off)
            self._add(key, tuple(reach.get(func, ())) if func is not None else ())
        per_program: dict[str, list[Access]] = {}
        for sec, off, access in self.core_uses:
            func = self._func_at(sec, off) if sec >= 0 else None
            programs = reach.get(func, ()) if func is not None else ()
            for program in programs:
                per_program.setdefault(program, []).append(access)
            if not programs:
                for key in access.keys:
                    self._add(key)
        for program, accesses in per_program.items():
            for key in alternatives.group(accesses):
                self._add(key, (program,))

    def _walk_code(self) -> dict[Func, set[str]]:
        """Walk every function's instructions: record its helper calls as uses,
        and return function -> names of the programs that reach it by calls
        (a program reaches itself)."""
        calls: dict[Func, set[Func]] = {}
        order = self.order
        for sec_index, starts in self.funcs.items():
            code = self.sections[sec_index].data()
            rels = self.relocs.get(sec_index, {})
            for start in starts:
                callees = calls.setdefault((sec_index, start), set())
                end = min(self.func_ends[(sec_index, start)], len(code))
                for off in range(start, end - INSN_SIZE + 1, INSN_SIZE):
                    op, regs, _o, imm = struct.unpack_from(order + "BBhi", code, off)
                    src = regs >> 4 if order == "<" else regs & 0xF
                    if op == _OP_CALL and src == 0 and off not in rels:
                        self.uses.append((sec_index, off, _helper_key(imm)))
                        continue
                    if not ((op == _OP_CALL and src == _PSEUDO_CALL) or op == _OP_LD_IMM64):
                        continue
                    sym = rels.get(off)
                    if (
                        sym is not None
                        and isinstance(sym["st_shndx"], int)
                        and self._executable(sym["st_shndx"])
                    ):
                        # libbpf: call -> sym + (imm + 1) insns; ld_imm64 of a
                        # function address (clang 14 leaves src_reg 0) -> sym + imm bytes
                        tsec = sym["st_shndx"]
                        base = sym["st_value"]
                        toff = base + (imm + 1) * INSN_SIZE if op == _OP_CALL else base + imm
                    elif sym is None and op == _OP_CALL:
                        tsec, toff = sec_index, off + (imm + 1) * INSN_SIZE
                    else:
                        continue
                    callee = self._func_at(tsec, toff)
                    if callee is not None:
                        callees.add(callee)
        reach: dict[Func, set[str]] = {}
        pairs = 0
        for func, prog in self.program_funcs.items():
            stack, seen = [func], {func}
            while stack:
                f = stack.pop()
                reach.setdefault(f, set()).add(prog)
                pairs += 1
                if pairs > MAX_REACH:
                    raise BadBpfObject(
                        f"{self.path}: its programs reach more than {MAX_REACH} functions in all"
                        " through calls; split it into smaller objects"
                    )
                for c in calls.get(f, ()):
                    if c not in seen:
                        seen.add(c)
                        stack.append(c)
        return reach

    def _executable(self, index: int) -> bool:
        return 0 < index < len(self.sections) and bool(self.sections[index]["sh_flags"] & _SHF_EXECINSTR)

    # -- struct_ops ----------------------------------------------------------

    def _struct_ops(self, programs: list[Program]) -> None:
        """Maps in .struct_ops / .struct_ops.link: their struct type is needed, and
        so is each member they set (to a program or to non-zero data)."""
        targets: dict[str, str] = {}
        graph = self.btf.graph
        for sec_name in sections.STRUCT_OPS_SECTIONS:
            idx = self.by_name.get(sec_name)
            if idx is None:
                continue
            content = self.sections[idx].data()
            rels = self.relocs.get(idx, {})
            rel_offsets = sorted(rels)
            for entry in self.btf.datasecs.get(sec_name, []):
                var = self.btf.var_ids.get(entry.type_id)
                if var is None:
                    continue
                offset = self._var_offset(idx, var.name)
                stype = graph[_skip(graph, var.type_id, typedefs=True)]
                if stype.kind != "struct" or not stype.name:
                    continue
                sname = essential_name(stype.name)
                users: set[str] = set()
                data_members: list[str] = []
                for m in stype.members or ():
                    if m.name is None:
                        continue
                    mstart = offset + m.bit_offset // 8
                    msize = _sizeof(graph, m.type)
                    progs = set()
                    lo = bisect.bisect_left(rel_offsets, mstart)
                    hi = bisect.bisect_left(rel_offsets, mstart + max(msize, 1))
                    for r_off in rel_offsets[lo:hi]:
                        sym = rels[r_off]
                        name = self.program_funcs.get((sym["st_shndx"], sym["st_value"]))
                        if name is not None:
                            progs.add(name)
                            targets[name] = f"{sname}.{m.name}"
                    if progs:
                        self._add(
                            Key(kind="field", name=f"{sname}.{m.name}", attach=None, detail="struct_ops"),
                            tuple(progs),
                        )
                        users |= progs
                    elif any(content[mstart : mstart + msize]):
                        data_members.append(f"{sname}.{m.name}")
                # A data member the kernel lacks fails the whole map: every program of it.
                for field_name in data_members:
                    self._add(
                        Key(kind="field", name=field_name, attach=None, detail="struct_ops"), tuple(users)
                    )
                self._add(Key(kind="struct_ops", name=sname, attach="struct_ops", detail=None), tuple(users))
        for i, p in enumerate(programs):
            if p.name in targets and p.attach in ("struct_ops", "struct_ops.s"):
                programs[i] = replace(p, target=targets[p.name])

    def _relocations(self) -> dict[int, dict[int, Symbol]]:
        """Section index -> {offset: symbol} for every REL section (code and data)."""
        out: dict[int, dict[int, Symbol]] = {}
        for sec in self.sections:
            if not isinstance(sec, RelocationSection) or sec["sh_type"] not in ("SHT_REL", "SHT_RELA"):
                continue
            target = sec["sh_info"]
            if (
                not 0 < target < len(self.sections)
                or self.sections[target].name.startswith(".debug")
                or self.sections[target].name.startswith(".BTF")
            ):
                continue
            table = out.setdefault(target, {})
            for rel in sec.iter_relocations():
                sym_index = rel["r_info_sym"]
                if sym_index < len(self.symbols):
                    table[rel["r_offset"]] = self.symbols[sym_index]
        return out

    def _var_offset(self, sec: int, name: str) -> int:
        """Where a DATASEC variable lives in its section. clang leaves the BTF
        offsets 0 for libbpf to fix up from the symbol table: so do we."""
        return self.var_offsets.get((name, sec), 0)

    # -- maps ----------------------------------------------------------------

    def _maps(self) -> None:
        """BTF-defined maps (SEC(".maps")): the kernel must know each map type
        (`__uint(type, BPF_MAP_TYPE_RINGBUF)` is a member `int (*type)[27]`).
        Programs use a map through ld_imm64 relocations against its symbol."""
        idx = self.by_name.get(".maps")
        if idx is None:
            return
        graph = self.btf.graph
        by_offset: dict[int, Key] = {}
        for entry in self.btf.datasecs.get(".maps", []):
            var = self.btf.var_ids.get(entry.type_id)
            if var is None:
                continue
            offset = self._var_offset(idx, var.name)
            mdef = graph[_skip(graph, var.type_id, typedefs=True)]
            for m in mdef.members or () if mdef.kind == "struct" else ():
                if m.name != "type" or graph[m.type].kind != "ptr":
                    continue
                arr = graph[graph[m.type].ref]
                if arr.kind == "array" and arr.count:
                    name = map_type_name(arr.count) or f"map type {arr.count}"
                    by_offset[offset] = Key(kind="map_type", name=name, attach=None, detail=None)
                    self._add(by_offset[offset])
        for sec, rels in self.relocs.items():
            if not self._executable(sec):
                continue
            for off, sym in rels.items():
                if sym["st_shndx"] == idx and sym["st_value"] in by_offset:
                    self.uses.append((sec, off, by_offset[sym["st_value"]]))

    # -- CO-RE relocations ---------------------------------------------------

    def _core_relos(self) -> None:
        """The types, fields and enum values of the CO-RE relocations, used
        where their instructions are."""
        idx = self.by_name.get(".BTF.ext")
        if idx is None:
            return
        relos = btf_ext.core_relos(self.sections[idx].data(), self.btf_strings, self.btf.byte_order)
        try:
            for relo in relos:
                access = self._relo_access(relo.type_id, relo.access, relo.kind)
                if access is not None:
                    sec = self.by_name.get(relo.section)
                    self.core_uses.append((-1 if sec is None else sec, relo.insn_off, access))
        except BadBtf as e:
            raise BadBpfObject(f"{self.path}: {e}") from None

    def _relo_access(self, type_id: int, access: str, kind: int) -> Access | None:
        """What one CO-RE relocation reads or probes, and the dependencies it stands for."""
        if kind == _TYPE_ID_LOCAL:
            return None
        if kind >= len(F.CORE_RELO_KINDS):
            raise BadBpfObject(
                f"{self.path}: unknown CO-RE relocation kind {kind}; kernsurf is older than the compiler"
            )
        graph = self.btf.graph
        if type_id not in graph:
            raise BadBpfObject(f"{self.path}: CO-RE relocation names type {type_id}, which the BTF lacks")
        detail = F.CORE_RELO_KINDS[kind]
        local = graph[_skip(graph, type_id, typedefs=False)]
        if not local.name:
            return None  # libbpf refuses relocations against anonymous types
        root = essential_name(local.name)
        probe = detail if kind in _PROBES else None
        flavoured = root != local.name
        root_kind = _dep_kind(local)
        # The type holding a field or enum value: needed (None), or only probed.
        holder = Key(kind=root_kind, name=root, attach=None, detail=detail if kind in _PROBES else None)
        try:
            steps = [int(x) for x in access.split(":")] if access else []
        except ValueError:
            raise BadBpfObject(f"{self.path}: bad CO-RE access string {access!r}") from None
        if kind in _FIELD_RELOS:
            path, tid = self._field_path(type_id, steps, access, local.name)
            if not path:
                return Access(
                    root=root, flavoured=flavoured, path=None, probe=probe, keys=(holder,), part=holder
                )
            field = Key(
                kind="field",
                name=".".join([root, *path]),
                attach=None,
                detail=detail,
                local=_local_kind(graph, tid),
            )
            return Access(
                root=root,
                flavoured=flavoured,
                path=".".join(path),
                probe=probe,
                keys=(holder, field),
                part=field,
            )
        if kind in _ENUMVAL_RELOS:
            t = graph[_skip(graph, type_id, typedefs=True)]
            if t.kind != "enum" or not t.enumerators or not steps or steps[0] >= len(t.enumerators):
                raise BadBpfObject(
                    f"{self.path}: CO-RE enum access {access!r} does not fit type "
                    f"{local.name}; rebuild the object"
                )
            value = essential_name(t.enumerators[steps[0]][0])
            enum_value = Key(kind="enum_value", name=f"{root}::{value}", attach=None, detail=detail)
            return Access(
                root=root,
                flavoured=flavoured,
                path=f"::{value}",
                probe=probe,
                keys=(holder, enum_value),
                part=enum_value,
            )
        shape = None
        if detail == "type_matches":  # the program's type, for libbpf's match rules
            from ingest.bpf.matches import local_shape  # it imports this module

            shape = local_shape(graph, type_id)
        own = Key(kind=root_kind, name=root, attach=None, detail=detail, local=shape)
        return Access(root=root, flavoured=flavoured, path=None, probe=probe, keys=(own,), part=own)

    def _field_path(self, type_id: int, steps: list[int], access: str, name: str) -> tuple[list[str], int]:
        """The member names a CO-RE field access string walks from `type_id`
        (array steps add none), and the type it ends at."""
        graph = self.btf.graph
        path: list[str] = []
        tid = type_id
        for step in steps[1:]:
            t = graph[_skip(graph, tid, typedefs=True)]
            if t.kind in ("struct", "union") and t.members and step < len(t.members):
                m = t.members[step]
                if m.name:
                    path.append(m.name)
                tid = m.type
            elif t.kind == "array":
                tid = t.ref
            else:
                raise BadBpfObject(
                    f"{self.path}: CO-RE access {access!r} does not fit type {name}; rebuild the object"
                )
        return path, tid

    # -- externs: kfuncs, ksyms, kconfig -------------------------------------

    def _externs(self) -> None:
        """.ksyms FUNCs (kfuncs) and VARs (ksyms), .kconfig CONFIG_* VARs, given to
        the programs whose instructions refer to them (call or ld_imm64 relocations)."""
        wanted: dict[str, tuple[str, str]] = {}  # symbol name -> (kind, name)
        for entry in self.btf.datasecs.get(".ksyms", []):
            func, var = self.btf.func_ids.get(entry.type_id), self.btf.var_ids.get(entry.type_id)
            if func is not None:
                wanted[func.name] = ("kfunc", func.name)
            elif var is not None:
                wanted[var.name] = ("ksym", var.name)
        for entry in self.btf.datasecs.get(".kconfig", []):
            var = self.btf.var_ids.get(entry.type_id)
            name = var.name if var is not None else ""
            if name.startswith("CONFIG_"):  # LINUX_KERNEL_VERSION, LINUX_HAS_*: libbpf's own
                wanted[name] = ("kconfig", name)
        if not wanted:
            return
        weak = {
            s.name
            for s in self.symbols
            if s["st_info"]["bind"] == "STB_WEAK" and s["st_shndx"] == "SHN_UNDEF"
        }
        keys = {
            sym: Key(kind=kind, name=name, attach=None, detail="weak" if sym in weak else None)
            for sym, (kind, name) in wanted.items()
        }
        for key in keys.values():
            self._add(key)
        for sec, rels in self.relocs.items():
            if not self.sections[sec]["sh_flags"] & _SHF_EXECINSTR:
                continue
            for off, sym in rels.items():
                use = keys.get(sym.name)
                if use is not None and sym["st_shndx"] == "SHN_UNDEF":
                    self.uses.append((sec, off, use))


def _dependency(key: Key, programs: tuple[str, ...]) -> Dependency:
    return Dependency(
        kind=key.kind,
        name=key.name,
        attach=key.attach,
        programs=programs,
        detail=key.detail,
        local=key.local,
        members=tuple(tuple(_dependency(part, ()) for part in member) for member in key.members),
    )


def _helper_key(helper_id: int) -> Key:
    """A `call <id>` of a BPF helper: the kernel's enum bpf_func_id must have it."""
    name = helper_name(helper_id)
    if name is None:
        return Key(kind="helper", name=f"helper {helper_id}", attach=None, detail=None)
    return Key(kind="helper", name=name, attach=None, detail="BPF_FUNC_" + name.removeprefix("bpf_"))


def _target_dep(attach: str, what: str, target: str) -> Key:
    """The dependency a program section's target stands for. Its attach is the
    base attach type; sleepable (.s) and writable (.w) variants say so in detail."""
    variant = sections.VARIANTS.get(attach)
    flag = None
    if variant is not None:
        attach, flag = variant
    if what == "function":  # kprobe: "sym+off" -> "sym"
        return Key(kind="function", name=target.split("+", 1)[0], attach=attach, detail=flag)
    if what == "btf_function":  # fentry/module:func names a module's function
        module, sep, func = target.rpartition(":")
        detail = " ".join(d for d in (flag, f"module:{module}" if sep else None) if d)
        return Key(kind="function", name=func, attach=attach, detail=detail or None)
    if what == "glob":
        return Key(kind="function", name=target, attach=attach, detail="glob")
    if what == "tracepoint":
        system, sep, event = target.partition("/")
        return (
            Key(kind="tracepoint", name=event, attach=attach, detail=system)
            if sep
            else Key(kind="tracepoint", name=target, attach=attach, detail=None)
        )
    return Key(kind=what, name=target, attach=attach, detail=flag)  # syscall, raw_tracepoint, lsm_hook, iter


def _dep_kind(t: CType) -> str:
    """struct (also for unions), enum or type (typedefs, ints, ...)."""
    kind = t.fwd_kind if t.kind == "fwd" else t.kind
    return _AGGREGATE_KIND.get(kind or "", "type")


def essential_name(name: str) -> str:
    """libbpf's essential name: "task_struct___old" -> "task_struct" (the last
    "x___y" separator: one non-underscore, three underscores, a non-underscore)."""
    n = len(name)
    for i in range(n - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return name[: i + 1]
    return name


def _local_kind(graph: dict[int, CType], tid: int) -> str | None:
    """The kind of the type a CO-RE field access reads (Dependency.local)."""
    try:
        kind = cdecl.type_kind(graph, tid)
    except ValueError:
        return None
    if kind.removeprefix("array ").startswith("enum"):
        t = graph[_skip(graph, tid, typedefs=True)]
        while t.kind == "array":
            t = graph[_skip(graph, t.ref, typedefs=True)]
        kind = f"{kind} {essential_name(t.name)}" if t.name else kind
    return kind


def _skip(graph: dict[int, CType], tid: int, typedefs: bool) -> int:
    """Follow const/volatile/restrict (and typedefs when asked) to the type underneath."""
    for _ in range(len(graph)):
        t = graph[tid]
        if t.kind in _MODIFIERS or (typedefs and t.kind == "typedef"):
            tid = t.ref
        else:
            return tid
    return tid


def _sizeof(graph: dict[int, CType], tid: int) -> int:
    """Bytes of a type (BPF pointers are 8 bytes)."""
    t = graph[_skip(graph, tid, typedefs=True)]
    if t.kind == "ptr":
        return 8
    if t.kind == "array":
        return (t.count or 0) * _sizeof(graph, t.ref)
    return t.size or 0
