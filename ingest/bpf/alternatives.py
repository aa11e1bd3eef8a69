"""CO-RE alternative groups (docs/concepts.md#co-re-alternatives).

A program that must run on kernels before and after a rename reads the
field both ways and lets the kernel's BTF decide at load time:

    if (bpf_core_field_exists(t->__state))          /* task_struct___x */
            return BPF_CORE_READ(t, __state);
    return BPF_CORE_READ((struct task_struct___o *)t, state);

Neither read is a hard dependency: the program loads when one of them
resolves. Within one program, a probe (field_exists of a path, type_exists
of a type) names the *preferred* member: the reads of that path (or of that
type). The *fallback* member is every read through a flavoured type
(`___suffix`) of the same root that no probe covers; when the program has
exactly one such family, flavoured reads of other roots with no probe of
their own join its fallback too (BPF_CORE_READ(r, q, disk) reads
request___x.q, then request_queue___x.disk: two roots, one alternative).
A family without a fallback is no group: its reads stay probed reads
(⚠ guarded when absent). Reads through unflavoured types that no probe
covers stay hard dependencies.

A group becomes one dependency of kind "alternatives" whose members are
tried in order: the first member resolving is ✓ "via …", a later one is
⚠ fallback, none is ✗.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ingest.bpf.keys import Key

_PROBES = frozenset(("field_exists", "type_exists"))


class Access(NamedTuple):
    """One CO-RE relocation as a use: what it reads and what it needs."""

    root: str  # the essential name of its root type ("task_struct")
    flavoured: bool  # the program's root type carries a ___suffix
    path: str | None  # the named members read ("mm.total_vm"); None: the type itself
    probe: str | None  # "field_exists", "type_exists", "enumval_exists"; None: a read
    keys: tuple[Key, ...]  # its dependencies outside a group: the holder, then the read
    part: Key  # what it stands for inside a group member


def group(accesses: Sequence[Access]) -> list[Key]:
    """The dependencies of one program's CO-RE accesses: alternative groups
    where the module docstring finds them, each other access's own keys."""
    accesses = list(dict.fromkeys(accesses))
    if not any(a.flavoured for a in accesses):
        return _keys(accesses)
    reads = [a for a in accesses if a.probe is None]
    families: dict[str, list[list[Access]]] = {}  # root -> its preferred members
    probes: dict[str, list[Access]] = {}
    for probe in accesses:
        if probe.probe not in _PROBES:
            continue
        covered = [
            r
            for r in reads
            if r.root == probe.root and (probe.probe == "type_exists" or r.path == probe.path)
        ]
        if covered:
            members = families.setdefault(probe.root, [])
            if covered not in members:
                members.append(covered)
            probes.setdefault(probe.root, []).append(probe)
    preferred = {a for members in families.values() for m in members for a in m}
    fallback = {
        root: [r for r in reads if r.flavoured and r.root == root and r not in preferred] for root in families
    }
    strays = [r for r in reads if r.flavoured and r not in preferred and r.root not in families]
    if len(families) == 1 and strays:
        fallback[next(iter(families))] += strays
    grouped: set[Access] = set()
    out: list[Key] = []
    for root, members in families.items():
        if not fallback[root]:
            continue
        alternatives = [*members, fallback[root]]
        grouped |= {a for m in alternatives for a in m} | set(probes[root])
        out.append(group_key([tuple(dict.fromkeys(a.part for a in m)) for m in alternatives]))
    return _keys([a for a in accesses if a not in grouped]) + out


def group_key(members: Sequence[tuple[Key, ...]]) -> Key:
    """The dependency standing for alternative `members` (each a conjunction)."""
    return Key(
        kind="alternatives", name=member_text(members), attach=None, detail=None, members=tuple(members)
    )


def member_text(members: Sequence[tuple[Key, ...]]) -> str:
    """ "task_struct.__state|task_struct.state": members by `|`, the parts of
    one member by `&` (a field path, an enum value "enum::VALUE", a type name)."""
    return "|".join("&".join(part.name for part in member) for member in members)


def parse_members(text: str) -> tuple[tuple[Key, ...], ...]:
    """The inverse of member_text() (for `kernsurf check --dep alternatives:…`)."""
    members = []
    for member in text.split("|"):
        parts = []
        for name in member.split("&"):
            name = name.strip()
            if not name:
                continue
            kind = "enum_value" if "::" in name else "field" if "." in name else "struct"
            parts.append(Key(kind=kind, name=name, attach=None, detail=None))
        if parts:
            members.append(tuple(parts))
    return tuple(members)


def _keys(accesses: Sequence[Access]) -> list[Key]:
    return list(dict.fromkeys(k for a in accesses for k in a.keys))
