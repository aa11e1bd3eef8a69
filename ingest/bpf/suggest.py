"""A way out of every ✗ (and of a Selective-inline ⚠): what a program can
attach to or read instead on that build, from facts the database holds
(docs/concepts.md#suggestions). Computed only for ✗/⚠ cells.

- fully inlined: the out-of-line functions it is inlined into, each marked
  attachable or not on the build, and the trace events those functions fire;
- only transformed copies: the copies' exact symbol names and whether each
  has an ftrace record (kprobe attaches to a copy by its name; fentry cannot);
- absent, present on another build: a likely successor defined by the same
  compile unit and declared in the same file, with a similar name or the
  same parameter types near the old line, marked as a guess;
- not attachable: its attachable callers and the trace events it fires;
- a missing field: the members the struct gained since the build that has
  the field (where a rename or a move shows), then those over its old bits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from difflib import SequenceMatcher
from functools import lru_cache
from typing import TYPE_CHECKING

from ingest.bpf.objects import Dependency
from ingest.bpf.reads import Reads
from ingest.bpf.report import Cell, Column, Suggestion
from ingest.queries import functions as functions_q
from ingest.queries import suggest as sq
from ingest.queries.builds import build_name

if TYPE_CHECKING:
    from ingest.bpf.check import BuildContext  # check imports this module

_MAX = 5  # suggestions of one kind per cell
_ALIKE = 0.6  # SequenceMatcher ratio from which two function names are alike
_NEAR = 3  # lines: a declaration this close to the old one is "at the same location"
_FENTRY = ("fentry", "fexit", "fmod_ret")


class Suggester:
    """Suggestions for the cells of one evaluation; per-build facts read once."""

    def __init__(self, conn: sqlite3.Connection, columns: Sequence[Column], facts: dict[int, BuildContext]):
        self.conn, self.columns, self.facts = conn, columns, facts

    def __call__(self, dep: Dependency, column: Column, cell: Cell) -> tuple[Suggestion, ...]:
        if cell.level not in ("fail", "warn"):
            return ()
        how = _REASONS.get(cell.reason)
        if how is None or (dep.kind != "function" and how is not Suggester._field) or dep.detail == "glob":
            return ()
        if dep.kind == "function" and "." in dep.name:
            return ()  # a clone named exactly
        return tuple(how(self, dep, column))

    # -- functions ------------------------------------------------------------

    def _attachable(self, build: int, name: str, attach: str | None) -> bool:
        """Whether a program of type `attach` attaches to function `name` on `build`."""
        from ingest.bpf.check import why_not_attachable  # check imports this module

        func = functions_q.function(self.conn, build, name)
        if func is None:
            return False
        return why_not_attachable(func, self.facts[build], attach in _FENTRY) is None

    def _callers(
        self, dep: Dependency, build: int, kind: str, why: str, rows: list[sq.CallerRow] | None = None
    ) -> list[Suggestion]:
        """Suggestions of the callers of `kind` (`rows`, when already read)."""
        rows = sq.callers(self.conn, build, dep.name, kind) if rows is None else rows
        rows = [r for r in rows if r.name != dep.name]  # recursion
        found = [(r, self._attachable(build, r.name, dep.attach)) for r in rows[: _MAX * 4]]
        found.sort(key=lambda x: not x[1])  # attachable first, by sites within
        return [
            Suggestion(
                kind="inline_caller" if kind == "inline" else "caller",
                target=f"{dep.attach or 'kprobe'}:{r.name}",
                evidence=f"{why} ({r.sites} site{'s' if r.sites > 1 else ''}){self._where(build, r.name)}",
                attachable=ok,
            )
            for r, ok in found[:_MAX]
        ]

    def _where(self, build: int, name: str) -> str:
        """ "; in module ext4" for a function that lives in a module, else ""."""
        home = (
            functions_q.function_home(self.conn, build, name)
            if self.facts[build].build.modules_read
            else None
        )
        return f"; in module {home}" if home else ""

    def _events_in(self, build: int, functions: Sequence[str], why: Callable[[str], str]) -> list[Suggestion]:
        out: dict[str, Suggestion] = {}
        reads = self.facts[build].reads
        for call in sq.events_in(self.conn, build, functions, lambda cu: reads(sq.trace_calls, cu)):
            target = f"tracepoint:{call.system}/{call.event}"
            out.setdefault(
                target,
                Suggestion(kind="tracepoint", target=target, evidence=why(call.caller), attachable=True),
            )
        return list(out.values())[:_MAX]

    def _inlined(self, dep: Dependency, column: Column) -> list[Suggestion]:
        build = column.build_id
        rows = sq.callers(self.conn, build, dep.name, "inline")
        out = self._callers(dep, build, "inline", f"{dep.name} is inlined into it", rows)
        out += self._events_in(
            build, [r.name for r in rows], lambda f: f"trace_ call in {f}, which {dep.name} is inlined into"
        )
        return out

    def _transformed(self, dep: Dependency, column: Column) -> list[Suggestion]:
        out = []
        for sym in sq.stem_symbols(self.conn, column.build_id, dep.name)[:_MAX]:
            ftrace = {1: "ftrace record", 0: "notrace", None: "ftrace not recorded"}[sym.ftrace]
            blocked = f"; kprobe blacklist: {sym.kprobe_blocked}" if sym.kprobe_blocked else ""
            fentry = (
                "; fentry cannot attach to a copy (no BTF FUNC of that name)" if dep.attach in _FENTRY else ""
            )
            out.append(
                Suggestion(
                    kind="symbol",
                    target=f"{'kretprobe' if dep.attach in ('fexit', 'kretprobe') else 'kprobe'}:{sym.name}",
                    evidence=f"compiler-made copy of {dep.name}: {ftrace}{blocked}{fentry}",
                    attachable=sym.kprobe_blocked is None,
                )
            )
        return out

    def _not_attachable(self, dep: Dependency, column: Column) -> list[Suggestion]:
        build = column.build_id
        out = self._events_in(build, [dep.name], lambda f: f"fired in {f} itself")
        out += [
            s
            for s in self._callers(dep, build, "direct", f"calls {dep.name}")
            + self._callers(dep, build, "inline", f"{dep.name} is inlined into it")
            if s.attachable
        ][:_MAX]
        return out

    def _absent(self, dep: Dependency, column: Column) -> list[Suggestion]:
        return successors(self.facts[column.build_id].reads, dep, column.build_id, self._attachable)

    def _selective(self, dep: Dependency, column: Column) -> list[Suggestion]:
        return self._callers(
            dep, column.build_id, "inline", f"runs an inlined copy of {dep.name} the probe misses"
        )

    # -- fields -----------------------------------------------------------------

    def _field(self, dep: Dependency, column: Column) -> list[Suggestion]:
        if dep.kind != "field":
            return []
        return field_neighbours(self.conn, dep.name, column, [c.build_id for c in self.columns])


def successors(
    reads: Reads, dep: Dependency, build: int, attachable: Callable[[int, str, str | None], bool]
) -> list[Suggestion]:
    """Functions of `build` that likely replace the absent `dep.name`: defined in
    the compile unit that defined it on another build and declared in the same
    file, with a similar name, or with the same parameter types near its old
    line; best first. Guesses. `reads` keeps what the other builds ask again."""
    others = [d for d in reads(sq.declarations, dep.name) if d.build_id != build]
    if not others:
        return []
    before = reads(sq.param_types, others[0].build_id, dep.name)
    scored: dict[str, tuple[float, str]] = {}
    for cu in dict.fromkeys(d.cu for d in others):
        olds = [d for d in others if d.cu == cu]
        for cand in sq.defined_in(reads.conn, build, cu, list(dict.fromkeys(d.path for d in olds))):
            old = next((d for d in olds if d.path == cand.path), None)
            if old is None or cand.name == dep.name:
                continue
            found = _likeness(reads, build, dep.name, cand, old.line, before)
            if found is not None and found[0] > scored.get(cand.name, (0.0, ""))[0]:
                scored[cand.name] = found
    best = sorted(scored.items(), key=lambda kv: -kv[1][0])[:3]
    if best and best[0][1][0] >= _ALIKE:  # a similar name: shape-only guesses would only add noise
        best = [b for b in best if b[1][0] >= _ALIKE]
    return [
        Suggestion(
            kind="successor",
            target=f"{dep.attach or 'function'}:{name}",
            evidence=why,
            attachable=attachable(build, name, dep.attach) if dep.attach else None,
        )
        for name, (_, why) in best
    ]


def _likeness(
    reads: Reads,
    build: int,
    name: str,
    cand: sq.Declared,
    line: int | None,
    params: tuple[str, ...] | None,
) -> tuple[float, str] | None:
    """(score, evidence) of `cand` as the successor of `name` (declared at `line`
    of the same file before, with parameter types `params`), None when unlike."""
    near = line is not None and cand.line is not None and abs(cand.line - line) <= _NEAR
    if not near and not _may_be_alike(name, cand.name):
        return None  # most of a unit's functions stop here
    ratio = _name_ratio(name, cand.name)
    if ratio < _ALIKE and not near:
        return None
    same_shape = params is not None and reads(sq.param_types, build, cand.name) == params
    if ratio < _ALIKE and not same_shape:
        return None
    contains = name in cand.name or cand.name in name
    why = [f"declared in {cand.path}" + (f":{cand.line}" if cand.line else "")]
    why.append(f"name {round(ratio * 100)}% alike" + (f", contains {name}" if name in cand.name else ""))
    if same_shape:
        why.append("same parameter types")
    if near:
        why.append(f"near its old line {line}")
    score = ratio + 0.3 * contains + 0.2 * same_shape + 0.1 * near
    return score, "guess: " + ", ".join(why)


@lru_cache(maxsize=1 << 16)
def _may_be_alike(old: str, new: str) -> bool:
    """Whether the cheap upper bounds of the names' ratio reach _ALIKE (kept: the
    same names come back for every build a /check page shows)."""
    matcher = SequenceMatcher(None, new, old)
    return matcher.real_quick_ratio() >= _ALIKE and matcher.quick_ratio() >= _ALIKE


@lru_cache(maxsize=1 << 16)
def _name_ratio(old: str, new: str) -> float:
    return SequenceMatcher(None, new, old).ratio()


def field_neighbours(
    conn: sqlite3.Connection, path: str, column: Column, builds: Sequence[int]
) -> list[Suggestion]:
    """For field `path` (root.member) missing on `column`'s build: the members
    the struct has there and not on the build that has the field (the build
    compared with first: a rename or a move, as its diff would say), and the
    members at (or next to) the bits the field had."""
    root, _, member = path.partition(".")
    if "." in member:
        return []  # nested paths: the neighbours of the first member would mislead
    here = _offsets(conn, root, column.build_id)
    if not here:
        return []
    for other in dict.fromkeys(b for b in (column.previous, *builds) if b and b != column.build_id):
        there = _offsets(conn, root, other)
        if member in there:
            break
    else:
        return []
    name = build_name(conn, other)
    out = [
        Suggestion(
            kind="field",
            target=f"field:{root}.{new}",
            evidence=f"{text}: in {root} here, not on {name} (where {member} is)",
            attachable=None,
        )
        for new, (_, _, text) in here.items()
        if new not in there
    ][:_MAX]
    offset, size, _ = there[member]
    out += _at_offset(root, member, (offset, offset + max(size, 1)), here, {s.target for s in out})
    return out[: _MAX * 2]


def _at_offset(
    root: str, member: str, old: tuple[int, int], offsets: dict[str, tuple[int, int, str]], taken: set[str]
) -> list[Suggestion]:
    """The members of `root` over the bits `member` had (else the nearest before and after it)."""
    start, end = old
    over = [n for n, (o, size, _) in offsets.items() if o < end and o + max(size, 1) > start]
    if not over:
        before = [n for n, (o, _, _) in offsets.items() if o < start]
        after = [n for n, (o, _, _) in offsets.items() if o >= end]
        over = [*(before[-1:]), *(after[:1])]
    out = []
    for name in over:
        offset, size, text = offsets[name]
        if name == member or f"field:{root}.{name}" in taken:
            continue
        where = "over the bits" if offset < end and offset + max(size, 1) > start else "next to where"
        out.append(
            Suggestion(
                kind="field",
                target=f"field:{root}.{name}",
                evidence=f"{text} at bits {offset}..{offset + size}, {where} {member} was (bits {start}..{end})",
                attachable=None,
            )
        )
    return out


def _offsets(conn: sqlite3.Connection, root: str, build: int) -> dict[str, tuple[int, int, str]]:
    """member -> (bit offset, bit size, type text) of the named members of struct
    `root` on `build`: its direct ones and those of its anonymous members."""
    out: dict[str, tuple[int, int, str]] = {}
    unnamed: set[int | None] = {None}
    for r in sq.member_offsets(conn, build, root):
        if r.parent not in unnamed:
            continue
        if r.name is None:
            unnamed.add(r.position)
        else:
            out.setdefault(r.name, (r.bit_offset, r.bit_size or 8 * (r.byte_size or 0), r.type_text))
    return out


_REASONS: dict[str, Callable[[Suggester, Dependency, Column], list[Suggestion]]] = {
    "inlined_full": Suggester._inlined,
    "transformed": Suggester._transformed,
    "not_attachable": Suggester._not_attachable,
    "absent": Suggester._absent,
    "inlined_partly": Suggester._selective,
    "field_missing": Suggester._field,
}
