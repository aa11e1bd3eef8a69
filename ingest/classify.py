"""Collision, inline and transformation rules of docs/concepts.md#function-status, and the status
line the reference pages print."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.model import Instance, Symbol

UNIQUE_GLOBAL = "Unique Global"
UNIQUE_STATIC = "Unique Static"
STATIC_DUPLICATION = "Static Duplication"
STATIC_STATIC = "Static-Static Collision"
STATIC_GLOBAL = "Static-Global Collision"

INLINE_NO, INLINE_SELECTIVE, INLINE_FULL, DECLARED_ONLY = "No", "Selective", "Full", "Declared only"


def collision(instances: Sequence[Instance]) -> str | None:
    """The collision type of all instances of one name (None: no instances)."""
    if not instances:
        return None
    if len(instances) == 1:
        return UNIQUE_GLOBAL if instances[0].external else UNIQUE_STATIC
    if len({(i.decl_file, i.decl_line) for i in instances}) == 1:
        return STATIC_DUPLICATION
    if not any(i.external for i in instances):
        return STATIC_STATIC
    return STATIC_GLOBAL


def inline(instances: Sequence[Instance], symbols: Sequence[Symbol]) -> str | None:
    """Full when no symbol carries the name (Declared only when nothing but
    declarations exist), Selective when some instance was inlined, else No.
    None when the build has neither DWARF instances nor symbols for it."""
    if not symbols:
        if not instances:
            return None
        if not any(i.defined for i in instances):
            return DECLARED_ONLY
        return INLINE_FULL
    if any(i.inline in (1, 3) for i in instances):
        return INLINE_SELECTIVE
    return INLINE_NO


def suffixes(symbols: Sequence[Symbol]) -> tuple[str, ...]:
    """Transformation suffixes of a name's symbols, sorted, without repeats."""
    return tuple(sorted({s for sym in symbols for s in sym.suffixes}))


def status_line(
    collision_type: str | None, inline_type: str | None, transformed: Sequence[str], present: bool = True
) -> str:
    """`Duplicate, Full Inline ⚠️`, `✅` or `Absent ⚠️` as on the reference pages."""
    if not present:
        return "Absent ⚠️"
    issues = []
    if collision_type == STATIC_DUPLICATION:
        issues.append("Duplicate")
    elif collision_type in (STATIC_STATIC, STATIC_GLOBAL):
        issues.append("Collision")
    if inline_type == INLINE_FULL:
        issues.append("Full Inline")
    elif inline_type == INLINE_SELECTIVE:
        issues.append("Selective Inline")
    elif inline_type == DECLARED_ONLY:
        issues.append("Declared Only")
    if transformed:
        issues.append("Transformation")
    return (", ".join(issues) + " ⚠️") if issues else "✅"
