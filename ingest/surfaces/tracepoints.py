"""Tracepoints (docs/concepts.md#surfaces): trace events read from the image's
`__start_ftrace_events`..`__stop_ftrace_events` pointer array, and raw
tracepoints from BTF `btf_trace_<name>` typedefs, merged by name.

Struct members are read at the offsets of the image's own layouts
(`struct trace_event_call`, `trace_event_class`, `tracepoint`), so no offset
is hard-coded; pointer size and byte order come from ImageMemory.

Which events are kept:
- ftrace-internal events (`ftrace:function`, `ftrace:print`, ... from
  kernel/trace/trace_entries.h) are skipped: their class's system is "ftrace"
  or their flags carry TRACE_EVENT_FL_IGNORE_ENABLE (both hold for all of
  them; the flag is checked only when the image's enum gives its value).
- per-syscall events (`syscalls:sys_enter_openat`, `sys_exit_openat`; class
  symbol `event_class_syscall_enter`/`_exit`) are kept when the kernel
  registers them at boot: `init_ftrace_syscalls()` ties a syscall's metadata
  (`call->data`, a `struct syscall_metadata`) to the native `sys_call_table`
  slot whose symbol names the same syscall, and `init_syscall_trace()` refuses
  the events of metadata no slot names (`sys_enter_chown16` on x86-64). Their
  struct is `syscall_trace_enter`/`syscall_trace_exit`, they have no
  `trace_event_raw_event_*` function (ftrace_syscall_enter/exit are attached
  at run time) and no print format in the image (set_syscall_print_fmt()
  builds it at boot); `fields` is the argument list from the metadata
  ("int __syscall_nr; const char * filename; int flags; umode_t mode") and
  `syscall` the syscall's normalised name. Without a native table read (an
  arch whose table is not known) every such event is kept; without metadata
  (`call->data` NULL) none is.
- when two events share a name the first in the array wins.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ingest.model import Layout, Tracepoint, TypeGraph
from ingest.readers.btf import BtfInfo
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces.syscalls import normalise
from ingest.types.cdecl import type_name

START, STOP = "__start_ftrace_events", "__stop_ftrace_events"
#: Class symbol of the per-syscall events -> (event_class, struct of their records, fixed fields).
SYSCALL_CLASSES = {
    "event_class_syscall_enter": ("syscall_enter", "syscall_trace_enter", "int __syscall_nr"),
    "event_class_syscall_exit": ("syscall_exit", "syscall_trace_exit", "int __syscall_nr; long ret"),
}
#: trace_event_call.flags bits read from the image's enum (anonymous in the
#: kernel: BTF keeps it, DWARF layouts do not). No fallback bits: they moved
#: down by one in 6.2 when TRACE_EVENT_FL_FILTERED went (6.1: TRACEPOINT 16,
#: 6.12: 8). Without the enum an event is a tracepoint when its union points
#: at a `struct tracepoint __tracepoint_<name>`, and ftrace's own events are
#: recognised by their system alone.
FLAG_NAMES = ("TRACE_EVENT_FL_IGNORE_ENABLE", "TRACE_EVENT_FL_TRACEPOINT")
RAW_PREFIX = "btf_trace_"


def read_tracepoints(
    mem: ImageMemory | None,
    layouts: list[Layout],
    btf: BtfInfo | None,
    function_names: frozenset[str],
    native_syscalls: Collection[str] = (),
) -> list[Tracepoint]:
    """Every trace event and raw tracepoint of one build, one per name, sorted
    by name. `native_syscalls`: the syscall names of the native table (which
    per-syscall events the kernel registers; empty: all)."""
    found: dict[str, Tracepoint] = {}
    if mem is not None:
        for tp in read_events(mem, layouts, btf, function_names, native_syscalls):
            found.setdefault(tp.name, tp)
    if btf is not None:
        for name, proto in raw_tracepoints(btf.graph).items():
            known = found.get(name)
            if known is None:
                found[name] = Tracepoint(name=name, raw_prototype=proto)
            else:
                known.raw_prototype = proto
    return [found[n] for n in sorted(found)]


# ---------------------------------------------------------------------------
# Trace events
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EventShape:
    """Where the members read live in this image, and its flag masks."""

    call: dict[str, int]  # trace_event_call member -> byte offset
    cls: dict[str, int]  # trace_event_class member -> byte offset
    tp_name: int  # offset of tracepoint.name
    flags: dict[str, int]  # FLAG_NAMES known from the image -> mask
    flags_size: int  # bytes of trace_event_call.flags
    meta: dict[str, int]  # struct syscall_metadata member -> byte offset ({} when unknown)
    nb_args_size: int  # bytes of syscall_metadata.nb_args


def read_events(
    mem: ImageMemory,
    layouts: list[Layout],
    btf: BtfInfo | None,
    function_names: frozenset[str],
    native_syscalls: Collection[str] = (),
) -> list[Tracepoint]:
    """The trace events of the `_ftrace_events` array, in array order,
    without ftrace-internal events and the per-syscall events the kernel
    would not register (see module docstring)."""
    bounds = mem.range(START, STOP)
    structs = {lay.name: lay for lay in layouts if lay.kind == "struct" and lay.size}
    call, cls, tracepoint, meta = (structs.get(n) for n in EVENT_STRUCTS)
    if bounds is None or call is None or cls is None:
        return []
    shape = _EventShape(
        call=member_offsets(call),
        cls=member_offsets(cls),
        tp_name=member_offsets(tracepoint).get("name", 0) if tracepoint else 0,
        flags=flag_values(layouts, btf),
        flags_size=_field_size(call, "flags") or 4,
        meta=member_offsets(meta) if meta else {},
        nb_args_size=(_field_size(meta, "nb_args") if meta else None) or 4,
    )
    native = frozenset(native_syscalls)
    out = []
    for addr in mem.pointers(*bounds):
        event = _read_event(mem, addr, shape)
        if event is None:
            continue
        if event.syscall is not None:
            if native and event.syscall not in native:
                continue  # init_syscall_trace() refuses it: no table slot
            record = SYSCALL_CLASSES[f"event_class_{event.event_class}"][1]
            event.struct = record if record in structs else None
            out.append(event)
            continue
        cls_name = event.event_class
        if cls_name and f"trace_event_raw_{cls_name}" in structs:
            event.struct = f"trace_event_raw_{cls_name}"
        if cls_name and f"trace_event_raw_event_{cls_name}" in function_names:
            event.func = f"trace_event_raw_event_{cls_name}"
        out.append(event)
    return out


def _read_event(mem: ImageMemory, addr: int, shape: _EventShape) -> Tracepoint | None:
    """One `struct trace_event_call` at `addr`; None when skipped or unreadable."""
    call = shape.call
    flag_word = (mem.uint(addr + call["flags"], shape.flags_size) if "flags" in call else 0) or 0
    if flag_word & shape.flags.get("TRACE_EVENT_FL_IGNORE_ENABLE", 0):
        return None
    class_ptr = mem.pointer(addr + call["class"]) if "class" in call else None
    class_sym = _class_symbol(mem, class_ptr) if class_ptr else None
    system = None
    if class_ptr and "system" in shape.cls:
        system = mem.cstring(mem.pointer(class_ptr + shape.cls["system"]) or 0)
    if system == "ftrace":
        return None
    name = _event_name(mem, addr, shape, flag_word)
    if not name:
        return None
    if class_sym in SYSCALL_CLASSES:
        return _syscall_event(mem, addr, shape, name, system, class_sym)
    fmt_ptr = mem.pointer(addr + call["print_fmt"]) if "print_fmt" in call else None
    return Tracepoint(
        name=name,
        system=system,
        event_class=class_sym.removeprefix("event_class_") if class_sym else None,
        print_fmt=mem.cstring(fmt_ptr or 0, limit=1 << 16),
    )


def _syscall_event(
    mem: ImageMemory, addr: int, shape: _EventShape, name: str, system: str | None, class_sym: str
) -> Tracepoint | None:
    """A per-syscall event: its syscall and argument list from `call->data`
    (a `struct syscall_metadata`), read at the image's own offsets; None
    without metadata (the kernel cannot register such an event)."""
    event_class, _, fixed = SYSCALL_CLASSES[class_sym]
    meta = mem.pointer(addr + shape.call["data"]) if "data" in shape.call else None
    if not meta:
        return None
    args = _syscall_args(mem, meta, shape.meta, shape.nb_args_size)
    meta_name = mem.cstring(mem.pointer(meta + shape.meta["name"]) or 0) if "name" in shape.meta else None
    syscall = normalise(meta_name) if meta_name else name.removeprefix("sys_enter_").removeprefix("sys_exit_")
    fields = None
    if event_class == "syscall_exit":
        fields = fixed
    elif args is not None:
        fields = "; ".join([fixed, *(f"{t} {a}" for t, a in args)])
    return Tracepoint(name=name, system=system, event_class=event_class, syscall=syscall, fields=fields)


#: A syscall has at most 6 arguments; more means the metadata was misread.
_MAX_ARGS = 6


def _syscall_args(
    mem: ImageMemory, meta: int, offsets: dict[str, int], nb_size: int
) -> list[tuple[str, str]] | None:
    """(type, name) of each argument of the `struct syscall_metadata` at `meta`."""
    if not {"nb_args", "types", "args"} <= offsets.keys():
        return None
    count = mem.uint(meta + offsets["nb_args"], nb_size)
    if count is None or count > _MAX_ARGS:
        return None
    if count == 0:
        return []
    types, names = (mem.pointer(meta + offsets[k]) for k in ("types", "args"))
    if not types or not names:
        return None
    step = mem.pointer_size
    out = []
    for i in range(count):
        t = mem.cstring(mem.pointer(types + i * step) or 0)
        a = mem.cstring(mem.pointer(names + i * step) or 0)
        if t is None or a is None:
            return None
        out.append((t, a))
    return out


def _event_name(mem: ImageMemory, addr: int, shape: _EventShape, flag_word: int) -> str | None:
    """`call->tp->name` for a tracepoint's event, else `call->name` (the two
    share an anonymous union)."""
    call = shape.call
    mask = shape.flags.get("TRACE_EVENT_FL_TRACEPOINT")
    if "tp" in call and (
        flag_word & mask if mask is not None else _points_at_tracepoint(mem, addr + call["tp"])
    ):
        tp = mem.pointer(addr + call["tp"])
        return mem.cstring(mem.pointer(tp + shape.tp_name) or 0) if tp else None
    if "name" not in call:
        return None
    return mem.cstring(mem.pointer(addr + call["name"]) or 0)


def _points_at_tracepoint(mem: ImageMemory, address: int) -> bool:
    """Whether the pointer at `address` targets a `__tracepoint_<name>` object."""
    target = mem.pointer(address)
    return (
        target is not None
        and target != 0
        and any(s.name.startswith("__tracepoint_") for s in mem.symbols_at(target))
    )


def _class_symbol(mem: ImageMemory, address: int) -> str | None:
    """The `event_class_<class>` symbol at `address`."""
    for sym in mem.symbols_at(address):
        if sym.name.startswith("event_class_"):
            return sym.name.split(".", 1)[0]  # drop a compiler suffix such as ".localalias"
    return None


def member_offsets(layout: Layout) -> dict[str, int]:
    """Byte offset of each member reachable without naming a container:
    top-level members and those of anonymous unions/structs (first wins)."""
    by_pos = {f.position: f for f in layout.fields}
    out: dict[str, int] = {}
    for f in layout.fields:
        if f.name is None or f.name in out:
            continue
        parent = f.parent
        while parent is not None and by_pos[parent].name is None:
            parent = by_pos[parent].parent
        if parent is None:
            out[f.name] = f.bit_offset // 8
    return out


def _field_size(layout: Layout, name: str) -> int | None:
    return next((f.byte_size for f in layout.fields if f.name == name), None)


#: The structs read_events reads the event records through.
EVENT_STRUCTS = ("trace_event_call", "trace_event_class", "tracepoint", "syscall_metadata")


def flag_values(layouts: list[Layout], btf: BtfInfo | None) -> dict[str, int]:
    """The FLAG_NAMES masks the image's enums give: named layouts, or the
    kernel's anonymous enum in BTF; absent names are unknown."""
    enums = [lay.values for lay in layouts if lay.kind == "enum"]
    if btf is not None:
        enums += [t.enumerators or [] for t in btf.graph.values() if t.kind == "enum" and not t.name]
    return {name: value for values in enums for name, value in values if name in FLAG_NAMES}


# ---------------------------------------------------------------------------
# Raw tracepoints
# ---------------------------------------------------------------------------


def raw_tracepoints(graph: TypeGraph) -> dict[str, str]:
    """name -> printed prototype, from every `typedef <ptr to func> btf_trace_<name>`."""
    out: dict[str, str] = {}
    for t in graph.values():
        if t.kind != "typedef" or not t.name or not t.name.startswith(RAW_PREFIX):
            continue
        target = graph.get(t.ref)
        if target is None or target.kind != "ptr" or graph.get(target.ref, target).kind != "func":
            continue
        out.setdefault(t.name[len(RAW_PREFIX) :], type_name(graph, target.ref))
    return out
