"""The text form of a dependency, `KIND:NAME`, and merging dependencies.

`kprobe:vmap`, `tracepoint:sched/sched_switch`, `field:dma_buf_ops.vmap`,
`kfunc?:bpf_task_acquire`: the head is a program attach type (libbpf's
section prefixes, ingest.bpf.sections, with its short spellings tp and
raw_tp) or a dependency kind; a trailing `?` marks a CO-RE probe or a weak
extern (see GUARDED_SPEC_KINDS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ingest.bpf import alternatives, sections
from ingest.bpf.objects import Dependency, Program
from ingest.errors import BadDependency

# CO-RE relocations a program can guard (bpf_core_*_exists): absence is a warning.
GUARDS = frozenset(("field_exists", "type_exists", "enumval_exists", "type_matches"))

#: Every dependency kind `kernsurf check` evaluates (ingest.bpf.check has one check per kind).
KINDS = (
    "function",
    "tracepoint",
    "raw_tracepoint",
    "lsm_hook",
    "syscall",
    "kfunc",
    "iter",
    "struct",
    "enum",
    "type",
    "field",
    "enum_value",
    "struct_ops",
    "ksym",
    "kconfig",
    "helper",
    "map_type",
    "alternatives",
)
#: Extern kinds a program may declare __weak (absence is then a warning).
WEAK_KINDS = frozenset(("kfunc", "ksym", "kconfig"))
#: The kinds a text form may name besides the attach types (the surfaces those name are left out).
_OTHER_KINDS = tuple(sorted(k for k in KINDS if k not in sections.ATTACH_KINDS.values()))

#: Every head `KIND:NAME` accepts: attach types, libbpf's short spellings, dependency kinds.
SPEC_KINDS: tuple[str, ...] = tuple(
    dict.fromkeys((*sections.ATTACH_KINDS, *sections.ALIASES, *sorted(KINDS)))
)
#: The heads whose `?` form means something: `field?:x.y` probes (the program
#: checks with bpf_core_field_exists and copes), `kfunc?:f` is a __weak extern.
GUARDED_SPEC_KINDS: tuple[str, ...] = tuple(
    f"{k}?" for k in ("struct", "enum", "type", "field", "enum_value", "kfunc", "ksym", "kconfig")
)


def spec(dep: Dependency) -> str:
    """The text form: `attach:name` for a program target (kprobe:vmap,
    tracepoint:sched/sched_switch), `kind:name` otherwise (field:dma_buf_ops.vmap,
    kfunc:bpf_task_acquire, helper:bpf_loop); a CO-RE probe or a weak extern adds
    `?` (field?:task_struct.x, kfunc?:bpf_task_acquire)."""
    if dep.attach:
        if dep.kind == "tracepoint" and dep.detail:
            return f"{dep.attach}:{dep.detail}/{dep.name}"
        return f"{dep.attach}:{dep.name}"
    return f"{dep.kind}{'?' if dep.detail in GUARDS or dep.detail == 'weak' else ''}:{dep.name}"


def parse_spec(text: str) -> Dependency:
    """The inverse of spec(); raise BadDependency when `text` is not a text form."""
    head, sep, name = text.strip().partition(":")
    if not sep or not name:
        raise BadDependency(f"{text!r}: expected kind:name, e.g. kprobe:vmap or field:dma_buf_ops.vmap")
    guarded = head.endswith("?")
    head = sections.ALIASES.get(head.rstrip("?"), head.rstrip("?"))
    if head in sections.ATTACH_KINDS:
        return _target(head, name)
    if head == "alternatives":
        return alternatives_dependency(name)
    if head in KINDS:
        guard = {"field": "field_exists", "enum_value": "enumval_exists"}.get(head, "type_exists")
        if head in WEAK_KINDS:
            guard = "weak"
        elif head == "helper":  # the bpf_func_id enumerator the kernel must have
            guard, guarded = "BPF_FUNC_" + name.removeprefix("bpf_"), True
        elif head == "map_type" and not name.startswith("BPF_MAP_TYPE_"):
            name = "BPF_MAP_TYPE_" + name.upper()
        return Dependency(kind=head, name=name, attach=None, programs=(), detail=guard if guarded else None)
    raise BadDependency(
        f"{text!r}: unknown kind {head!r}; use a program type ({', '.join(sections.ATTACH_KINDS)}) "
        f"or one of {', '.join(_OTHER_KINDS)}"
    )


def alternatives_dependency(text: str) -> Dependency:
    """`alternatives:task_struct.__state|task_struct.state` as a Dependency
    (members by `|`, parts of one member by `&`; ingest.bpf.alternatives)."""
    members = alternatives.parse_members(text)
    if len(members) < 2:
        raise BadDependency(
            f"alternatives:{text}: expected two members or more, e.g. "
            "alternatives:task_struct.__state|task_struct.state"
        )
    return Dependency(
        kind="alternatives",
        name=alternatives.member_text(members),
        attach=None,
        programs=(),
        detail=None,
        members=tuple(
            tuple(
                Dependency(kind=part.kind, name=part.name, attach=None, programs=(), detail=None)
                for part in member
            )
            for member in members
        ),
    )


def _target(attach: str, name: str) -> Dependency:
    """The dependency of a program of attach type `attach` on target `name`."""
    kind = sections.ATTACH_KINDS[attach]
    detail = None
    if attach in sections.GLOB_ATTACHES:
        detail = "glob"
    elif kind == "tracepoint":
        system, _, name = name.rpartition("/")
        detail = system or None
    return Dependency(kind=kind, name=name, attach=attach, programs=(), detail=detail)


def merge(dependencies: list[Dependency]) -> list[Dependency]:
    """One row per target: the same kind, name and attach type (and system of
    a tracepoint) are merged and their programs united. A field or enum value
    the program probes (bpf_core_field_exists, ...) stays a probe: its reads
    are taken to be guarded by the probe. A struct, enum or type is a probe
    only when every use is. Program targets first, then by kind, in
    first-seen order."""
    merged: dict[tuple[str, str, str | None, str | None], Dependency] = {}
    for dep in dependencies:
        key = merge_key(dep)
        old = merged.get(key)
        if old is None:
            merged[key] = dep
            continue
        if dep.kind in ("field", "enum_value"):  # any probe guards the reads
            detail = old.detail if old.detail in GUARDS or dep.detail not in GUARDS else dep.detail
        else:  # a probe only if every use is
            detail = old.detail if old.detail not in GUARDS or dep.detail in GUARDS else dep.detail
        merged[key] = replace(
            old, detail=detail, programs=tuple(sorted(set(old.programs) | set(dep.programs)))
        )
    kinds = list(dict.fromkeys(d.kind for d in merged.values()))
    return sorted(merged.values(), key=lambda d: (d.attach is None, kinds.index(d.kind)))


def merge_key(dep: Dependency) -> tuple[str, str, str | None, str | None]:
    """What merge() unites: kind, name, attach type and a tracepoint's system."""
    return (dep.kind, dep.name, dep.attach, dep.detail if dep.kind == "tracepoint" else None)


def parse_retarget(text: str) -> tuple[str, str]:
    """`PROGRAM=FUNCTION` (--retarget) as (program, function); BadDependency when malformed."""
    program, sep, function = text.partition("=")
    if not sep or not program.strip() or not function.strip():
        raise BadDependency(f"{text!r}: expected PROGRAM=FUNCTION, e.g. file_read_entry=ext4_file_read_iter")
    return program.strip(), function.strip()


def retarget(
    dependencies: list[Dependency], programs: Sequence[Program], targets: dict[str, str]
) -> list[Dependency]:
    """The dependencies of one object with the attach target of each program
    named in `targets` (program -> kernel name) replaced, as its loader does
    with bpf_program__set_attach_target: the placeholder target loses that
    program (and goes when no program is left), the real one gains it."""
    out = list(dependencies)
    for program in programs:
        name = targets.get(program.name)
        if name is None or program.attach is None:
            continue
        old = next((d for d in out if d.attach is not None and program.name in d.programs), None)
        if old is not None:
            out.remove(old)
            rest = tuple(p for p in old.programs if p != program.name)
            if rest:
                out.append(replace(old, programs=rest))
            base = old
        else:  # a bare SEC("kprobe"): the loader names the target
            variant = sections.VARIANTS.get(program.attach)
            attach = variant.attach if variant is not None else program.attach
            if attach not in sections.ATTACH_KINDS:
                raise BadDependency(
                    f"--retarget {program.name}: a {program.attach} program has no kernel target"
                )
            base = _target(attach, name)
        kept = [w for w in (base.detail or "").split() if w != "glob" and not w.startswith("module:")]
        detail = " ".join(kept) or None
        if base.kind == "tracepoint":
            system, _, name = name.rpartition("/")
            detail = system or base.detail
        out.append(replace(base, name=name, detail=detail, programs=(program.name,)))
    return out
