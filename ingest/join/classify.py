"""Collision, inline and transformation rules of docs/concepts.md#function-status, and the one
status decision table that the status lines, the strip cells and the matrix all read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

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


class Issue(NamedTuple):
    """One finding of a status line: its words, its strip letter and the colour
    class of a strip cell (the highest `rank` among a build's issues wins)."""

    words: str
    letter: str
    cls: str
    rank: int


#: The status decision table (docs/concepts.md#function-status): collision type, then
#: inline type, then transformation, in the order a status line names them.
COLLISION_ISSUES = {
    STATIC_DUPLICATION: Issue("Duplicate", "D", "D", 2),
    STATIC_STATIC: Issue("Collision", "C", "C", 2),
    STATIC_GLOBAL: Issue("Collision", "C", "C", 2),
}
INLINE_ISSUES = {
    INLINE_FULL: Issue("Full Inline", "F", "F", 3),
    INLINE_SELECTIVE: Issue("Selective Inline", "S", "S", 1),
    DECLARED_ONLY: Issue("Declared Only", "O", "O", 3),
}
TRANSFORMED = Issue("Transformation", "T", "T", 0)
NO_DWARF = " (no DWARF: inlining unknown)"


def issues(collision_type: str | None, inline_type: str | None, transformed: Sequence[str]) -> list[Issue]:
    """What the table finds for one function in one build, in status-line order."""
    found = []
    if collision_type in COLLISION_ISSUES:
        found.append(COLLISION_ISSUES[collision_type])
    if inline_type in INLINE_ISSUES:
        found.append(INLINE_ISSUES[inline_type])
    if transformed:
        found.append(TRANSFORMED)
    return found


def status_line(
    collision_type: str | None, inline_type: str | None, transformed: Sequence[str], present: bool = True
) -> str:
    """`Duplicate, Full Inline ⚠️`, `✅` or `Absent ⚠️` as on the reference pages."""
    if not present:
        return "Absent ⚠️"
    found = issues(collision_type, inline_type, transformed)
    return (", ".join(i.words for i in found) + " ⚠️") if found else "✅"


def build_status(
    collision_type: str | None,
    inline_type: str | None,
    transformed: Sequence[str],
    present: bool,
    has_dwarf: bool,
) -> str:
    """The status line of one build, saying when the build has no DWARF (inlining unknown)."""
    if not present:
        return "not in BTF or symbols" + NO_DWARF if not has_dwarf else "Absent ⚠️"
    if not has_dwarf:
        return status_line(None, None, transformed) + NO_DWARF
    return status_line(collision_type, inline_type, transformed)


def strip_cell(
    collision_type: str | None,
    inline_type: str | None,
    transformed: Sequence[str],
    present: bool,
    has_dwarf: bool,
) -> tuple[str, str]:
    """(letters, colour class) of one build's cell in a status strip or matrix."""
    if not present:
        return "", "absent"
    if not has_dwarf:
        return "?" + (TRANSFORMED.letter if transformed else ""), "nodwarf"
    found = issues(collision_type, inline_type, transformed)
    if not found:
        return "", "ok"
    return "".join(i.letter for i in found), max(found, key=lambda i: i.rank).cls
