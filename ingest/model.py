"""The in-memory model every reader produces and the database layer consumes.

Readers (ingest/readers/) turn bytes into these objects, the stages
(vmlinux/, modules/, join/, surfaces/) derive instances and per-name status
from them into one Build; ingest/db/ is the only place that stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# ---------------------------------------------------------------------------
# Types: one neutral graph for both BTF and DWARF, printed by cdecl.py.
# ---------------------------------------------------------------------------

#: CType.kind values.
TYPE_KINDS = (
    "void",  # id 0 in every graph
    "int",  # integer/bool/char base type: name as the compiler spells it
    "float",  # floating point base type
    "ptr",  # pointer to `ref`
    "const",
    "volatile",
    "restrict",
    "atomic",  # qualifier of `ref`
    "typedef",  # `name` for `ref`
    "struct",
    "union",  # aggregate: `name` (None = anonymous), `size`, `members`
    "enum",  # `name`, `size`, `enumerators`
    "fwd",  # forward declaration: `name`, `fwd_kind` in ("struct", "union", "enum")
    "array",  # `count` elements (None = flexible/unknown) of `ref`
    "func",  # prototype: returns `ref`, `params`, `variadic`
)


@dataclass(slots=True)
class Member:
    """One struct/union member; anonymous aggregate members have name None."""

    name: str | None
    type: int  # type id in the same graph
    bit_offset: int  # from the start of the enclosing aggregate
    bit_size: int = 0  # bitfield width, 0 for ordinary members


@dataclass(slots=True)
class CType:
    """One node of a type graph (dict[int, CType]); see TYPE_KINDS."""

    kind: str
    name: str | None = None
    ref: int = 0  # target/element/return type id (0 = void)
    size: int | None = None  # bytes, for int/float/struct/union/enum
    count: int | None = None  # array element count
    params: list[tuple[str | None, int]] | None = None  # func: (name, type id)
    variadic: bool = False
    members: list[Member] | None = None
    enumerators: list[tuple[str, int]] | None = None
    fwd_kind: str | None = None


TypeGraph = dict[int, CType]


@dataclass(slots=True)
class Prototype:
    """A function prototype as structured parameters plus printed C."""

    return_type: str  # C type text, e.g. "void *"
    params: list[tuple[str | None, str]]  # (name, C type text) in order
    variadic: bool
    text: str  # "void *vmap(struct page **pages, ...);"
    source: str  # "btf" or "dwarf"
    # Typedef-resolved texts (cdecl.canonical_type_name), for comparing types by
    # meaning across builds (diff.py); None when the reader did not compute them.
    canon_params: list[str] | None = None  # one per entry of `params`
    canon_return: str | None = None


@dataclass(slots=True)
class Field:
    """One row of a printed layout; anonymous containers have name None and
    `parent` links members to the position of their container."""

    position: int
    name: str | None
    type_text: str  # abstract C type, e.g. "int (*)(struct dma_buf *)"
    decl: str  # full declaration, e.g. "int (*attach)(struct dma_buf *)"
    bit_offset: int  # absolute within the top-level aggregate
    bit_size: int  # bitfield width, 0 otherwise
    byte_size: int | None  # size of the member's type
    parent: int | None = None
    canon_type: str | None = None  # type_text with typedefs resolved (cdecl.canonical_type_name)
    # The member's type below typedefs and qualifiers (cdecl.type_kind): "int",
    # "ptr", "func_ptr", "struct", "union", "enum", "float", "array int", ...;
    # None when not recorded.
    type_kind: str | None = None
    # The layout of the struct/union/enum the member holds (typedefs, qualifiers
    # and arrays stripped; anonymous ones too), None for other types.
    type_layout: Layout | None = None


@dataclass(slots=True)
class Layout:
    """A struct, union or enum as stored: kind, size, fields or values. Named
    ones are the build's types; anonymous ones (name "") are only reached
    through Field.type_layout."""

    kind: str  # "struct", "union" or "enum"
    name: str
    size: int
    fields: list[Field] = field(default_factory=list)
    values: list[tuple[str, int]] = field(default_factory=list)  # enum only
    # Its content address once computed (ingest.types.layouts.digest_of), kept so that
    # a layout crossing from a worker is not hashed again.
    digest: str | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class Typedef:
    """A named typedef (docs/concepts.md#typedefs): the type it names, and
    what that is once every typedef and qualifier below it is resolved."""

    name: str  # "atomic_long_t"
    target: str  # the type it names, as C prints it: "atomic64_t", "struct {...}", "int (*)(void *)"
    canon: str  # the target with typedefs resolved: "struct {...}", "long long int"
    kind: str  # cdecl.type_kind of the target: int, ptr, func_ptr, struct, union, enum, "array int", ...
    size: int | None  # sizeof, None when unknown (void, function, flexible array)
    # The struct, union or enum it resolves to (through typedefs, qualifiers and
    # arrays; anonymous ones too): what a CO-RE access rooted at the typedef walks.
    layout: Layout | None = None

    def key(self) -> tuple[str, str, str]:
        """What tells two typedefs of one name apart (DWARF units repeat them)."""
        return (self.name, self.target, self.canon)


# ---------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Instance:
    """One function instance (docs/concepts.md#instances)."""

    name: str
    external: bool
    decl_file: str | None  # normalised path, e.g. "include/linux/kvm_host.h"
    decl_line: int | None
    cu: str | None  # normalised path of the compile unit
    inline: int | None  # DW_AT_inline value, None when absent
    address: int | None
    defined: bool  # a definition, out-of-line copy or inlined copy was seen
    module: str | None = None  # the loadable module it is in; None: vmlinux

    def key(self) -> tuple:
        """Identity inside one build: module and name for externals, else
        module, location and CU (docs/concepts.md#modules)."""
        if self.external:
            return (self.module, self.name)
        return (self.module, self.name, self.decl_file, self.decl_line, self.cu)


@dataclass(slots=True)
class CallEdge:
    """`sites` call sites of `callee` inside the concrete function `caller`
    (both indexes into the build's instance list); kind "direct" or "inline"."""

    callee: int
    caller: int
    kind: str
    sites: int


@dataclass(slots=True)
class Symbol:
    """One STT_FUNC symbol (docs/concepts.md#symbols-and-transformations)."""

    name: str
    stem: str
    suffixes: tuple[str, ...]
    address: int
    size: int
    binding: str  # "STB_GLOBAL", "STB_LOCAL", "STB_WEAK"
    section: str | None
    module: str | None = None  # the loadable module it is in; None: vmlinux


@dataclass(slots=True)
class FunctionStatus:
    """The per-build status of one function name (docs/concepts.md#function-status)."""

    name: str
    collision: str | None  # None when the build has no DWARF for this name
    inline: str | None  # "No", "Selective", "Full", "Declared only"; None unknown
    suffixes: tuple[str, ...]
    n_instances: int
    n_symbols: int
    prototype: Prototype | None
    # Where it lives when vmlinux has no instance or symbol of it: the first
    # module (by path) that has; None: vmlinux (or modules not read).
    module: str | None = None


@dataclass(slots=True)
class Module:
    """One loadable module of a build (docs/concepts.md#modules); its
    instances, symbols and trace events sit in the Build, tagged with its name."""

    name: str
    path: str  # below lib/modules/<release>/kernel/: "fs/ext4/ext4.ko"
    license: str | None = None
    description: str | None = None
    depends: tuple[str, ...] = ()
    vermagic: str | None = None
    size: int | None = None
    error: str | None = None  # unreadable, and why: nothing else of it is kept
    layouts: list[Layout] = field(default_factory=list)  # its own named types (not in vmlinux)
    attach: dict[str, AttachFacts] = field(default_factory=dict)  # its symbol name -> facts
    btf_funcs: frozenset[str] = frozenset()  # its split BTF's FUNCs


# ---------------------------------------------------------------------------
# A whole build
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class BuildInfo:
    """Identity and provenance of one kernel image."""

    build_id: str  # ELF build-id (hex) or sha256 when the image has none
    distro: str | None
    version: str | None  # package version, e.g. "6.1.192-2"
    release: str | None  # kernel release, e.g. "6.1.0-56-amd64"
    arch: str | None
    flavor: str | None
    compiler: str | None
    dwarf_version: int | None
    has_dwarf: bool
    has_btf: bool
    has_symtab: bool
    file_size: int
    sha256: str
    path: str


@dataclass(slots=True)
class Build:
    """Everything ingested from one image, ready for db.store_build()."""

    info: BuildInfo
    instances: list[Instance] = field(default_factory=list)
    calls: list[CallEdge] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    functions: list[FunctionStatus] = field(default_factory=list)
    layouts: list[Layout] = field(default_factory=list)
    typedefs: list[Typedef] | None = None  # None: not recorded
    tracepoints: list[Tracepoint] = field(default_factory=list)
    syscalls: list[Syscall] = field(default_factory=list)
    lsm_hooks: list[LsmHook] = field(default_factory=list)
    kfuncs: list[Kfunc] = field(default_factory=list)
    attach: dict[str, AttachFacts] = field(default_factory=dict)  # symbol name -> facts
    btf_funcs: frozenset[str] = frozenset()  # names with a BTF FUNC
    config: dict[str, str] = field(default_factory=dict)  # CONFIG_X -> "y", "m", "\"str\"", "n"
    variables: list[Variable] | None = None  # None: not recorded (no symbol table)
    modules: list[Module] | None = None  # None: modules not read
    # Kind of fact -> the source that gave it, None: unknown (ingest.origins.facts.FACTS).
    sources: dict[str, str | None] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Other dependency surfaces (docs/concepts.md#attachability, #surfaces)
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Tracepoint:
    """One tracepoint: a trace event from `__start_ftrace_events`, a raw
    tracepoint from a `btf_trace_<name>` typedef, or both (same name)."""

    name: str  # e.g. "sched_switch"
    system: str | None = None  # trace system, e.g. "sched"; None: raw only
    event_class: str | None = None  # template, from the `event_class_<class>` symbol
    struct: str | None = None  # "trace_event_raw_<class>" when that struct exists
    func: str | None = None  # "trace_event_raw_event_<class>" when that function exists
    print_fmt: str | None = None
    raw_prototype: str | None = None  # "void (void *, bool, struct task_struct *, ...)" from btf_trace_<name>
    syscall: str | None = None  # per-syscall events (sys_enter_openat): the syscall, "openat"
    fields: str | None = None  # per-syscall events: "int __syscall_nr; const char * filename; ..."
    module: str | None = None  # the loadable module defining it; None: vmlinux


@dataclass(slots=True)
class Syscall:
    """One `sys_call_table`-like slot resolved to a symbol."""

    table: str  # table symbol, e.g. "sys_call_table", "compat_sys_call_table"
    abi: str  # "native", "compat", "x32", "ia32"
    number: int
    name: str  # normalised: "read"
    symbol: str  # the slot's symbol, e.g. "__x64_sys_read"


@dataclass(slots=True)
class LsmHook:
    """One LSM hook: a member of `security_hook_heads` (or, from 6.12, of
    `lsm_static_calls_table`)."""

    name: str  # e.g. "file_open"
    prototype: str | None  # from `union security_list_options`, e.g. "int (struct file *)"
    bpf_lsm: bool  # `bpf_lsm_<name>` has a BTF FUNC: `lsm/<name>` can attach


@dataclass(slots=True)
class Kfunc:
    """One kfunc: a BTF FUNC tagged `bpf_kfunc`, or a member of a BTF_ID set8."""

    name: str
    source: str  # "decl_tag" or "btf_id_set8"
    sets: tuple[str, ...] = ()  # set8 symbols naming it, e.g. ("generic_btf_ids",)
    flags: int | None = None  # KF_* flags from the set8 entry (OR of all sets)
    module: str | None = None  # the loadable module registering it; None: vmlinux


class Variable(NamedTuple):
    """One kernel variable (a `ksym` extern's target): a data symbol, a BTF VAR, or both."""

    name: str
    address: int | None  # None: a BTF VAR without a symbol (BTF-only input)
    size: int | None
    binding: str | None  # "STB_GLOBAL", "STB_LOCAL", "STB_WEAK"
    section: str | None  # ".data", ".data..percpu", ...
    per_cpu: bool  # in .data..percpu (section or BTF DATASEC)
    btf_var: bool  # the BTF has a VAR of this name (typed __ksym externs need it)


@dataclass(slots=True)
class AttachFacts:
    """What the image tells about attaching to one function symbol (docs/concepts.md#attachability)."""

    ftrace: bool  # in `__mcount_loc` / patchable function entries
    kprobe_blocked: str | None  # why kprobes refuse it: "NOKPROBE_SYMBOL", ".kprobes.text", "noinstr", ...
