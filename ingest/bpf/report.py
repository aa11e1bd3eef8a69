"""The report of `kernsurf check`: dependencies × builds, one Cell each, with
its stable reason code (REASONS), as a terminal table, Markdown or a dict
for JSON, and the per-object summary (docs/concepts.md#check-verdicts-and-reason-codes)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ingest.bpf.objects import Dependency
from ingest.bpf.spec import spec

LEVELS = ("ok", "warn", "fail", "unknown")
MARKS = {"ok": "✓", "warn": "⚠", "fail": "✗", "unknown": "?"}
_SEVERITY = {"ok": 0, "unknown": 1, "warn": 2, "fail": 3}

#: Every reason code a Cell may carry, with what it means. The JSON, the
#: Markdown and the /check page carry these codes; they do not change between
#: versions (new ones may be added). docs/concepts.md lists them too.
REASONS: dict[str, str] = {
    "ok": "works",
    # fail (✗)
    "absent": "the build was read for it and does not have it",
    "inlined_full": "every call is inlined: no symbol to attach to",
    "transformed": "only compiler-renamed copies (foo.isra.0, ...): the name cannot be probed",
    "field_missing": "the struct (or a member on the path) lacks the field",
    "kind_mismatch": "the field exists but its kind differs from what the program reads (libbpf refuses it)",
    "not_attachable": "present, but the mechanism refuses it (notrace, kprobe blacklist, init text, no BTF)",
    "config_missing": "a kernel config option the mechanism needs is not set",
    # warn (⚠)
    "inlined_partly": "Selective inline: some calls run an inlined copy the probe does not see",
    "ambiguous": "several functions or symbols share the name",
    "prototype_changed": "the prototype changed since the build it is compared with",
    "changed": "the item changed since the build it is compared with",
    "weak": "a __weak extern the build lacks: the program copes",
    "guarded": "absent, but the program tests for it (bpf_core_*_exists)",
    "fallback": "only a flavoured CO-RE fallback (___suffix) resolves",
    "unverified": "present, but a fact attaching needs is not recorded (kprobe blacklist, ftrace records)",
    # unknown (?)
    "absent_everywhere": "no build in the database has it: a placeholder the loader retargets, a typo, or a module",
    "not_recorded": "the build does not record the fact (modules not read, BTF-only input, older kernsurf)",
}

#: The level a reason code has (the ok/warn/fail/unknown it explains).
REASON_LEVELS: dict[str, str] = {
    **dict.fromkeys(("ok",), "ok"),
    **dict.fromkeys(
        (
            "absent",
            "inlined_full",
            "transformed",
            "field_missing",
            "kind_mismatch",
            "not_attachable",
            "config_missing",
        ),
        "fail",
    ),
    **dict.fromkeys(
        (
            "inlined_partly",
            "ambiguous",
            "prototype_changed",
            "changed",
            "weak",
            "guarded",
            "fallback",
            "unverified",
        ),
        "warn",
    ),
    **dict.fromkeys(("absent_everywhere", "not_recorded"), "unknown"),
}

#: What one object's programs do on one build (Report.summary): by the worst
#: level of its dependencies, alternatives counted once.
VERDICTS = {"ok": "works", "warn": "works with warnings", "fail": "fails", "unknown": "unknown"}


def severity(level: str) -> int:
    """The order of LEVELS by badness (ok < unknown < warn < fail)."""
    return _SEVERITY[level]


@dataclass(frozen=True, slots=True)
class Column:
    """One build as a column of the report."""

    build_id: int
    build: str
    label: str
    group: str | None
    previous: int | None  # the build it is compared with in its group


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Something to attach to or read instead of a ✗ (or ⚠) dependency on one
    build (ingest.bpf.suggest), from facts of the database."""

    kind: str  # inline_caller, caller, tracepoint, symbol, successor, field
    target: str  # a dependency text form: kprobe:foo.isra.0, tracepoint:block/block_rq_issue, field:x.y
    evidence: str  # the facts it rests on; a guess says so
    attachable: bool | None  # on this build; None: not a thing one attaches to (a field read)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "evidence": self.evidence,
            "attachable": self.attachable,
        }

    def text(self) -> str:
        mark = {True: "✓", False: "✗", None: ""}[self.attachable]
        return f"{self.target}{' ' + mark if mark else ''} ({self.evidence})"


@dataclass(frozen=True, slots=True)
class Cell:
    level: str  # one of LEVELS
    text: str  # "ok", "absent", "inlined (Full): no symbol", "not attachable (notrace)", ...
    reason: str = "ok"  # one of REASONS
    suggestions: tuple[Suggestion, ...] = ()  # ways out of a ✗ or ⚠ (only those cells have them)

    def __post_init__(self) -> None:
        if REASON_LEVELS.get(self.reason) != self.level:
            raise ValueError(f"reason {self.reason!r} does not explain level {self.level!r}")


@dataclass(frozen=True, slots=True)
class ObjectDeps:
    """Which of the report's dependencies one checked object (or the --dep list) has."""

    name: str  # the object's file name, or "--dep"
    dependencies: tuple[int, ...]  # indexes into Report.dependencies


@dataclass(slots=True)
class Report:
    dependencies: list[Dependency]
    columns: list[Column]
    cells: list[list[Cell]] = field(default_factory=list)  # [dependency][column]
    # Problems that did not stop the check: "prog.o: unknown program section 'foo' (not checked)".
    warnings: list[str] = field(default_factory=list)
    # What was left out on purpose: "prog.o: 2 user-space programs (uprobe ...): not checked".
    notes: list[str] = field(default_factory=list)
    objects: list[ObjectDeps] = field(default_factory=list)

    def worst(self, column: int) -> str:
        """The worst level of one column."""
        return max((row[column].level for row in self.cells), key=severity, default="ok")

    def counts(self) -> dict[str, int]:
        """How many cells have each level."""
        return {level: sum(c.level == level for row in self.cells for c in row) for level in LEVELS}

    def reason_counts(self) -> dict[str, int]:
        """How many cells have each reason code, in REASONS order."""
        found = Counter(c.reason for row in self.cells for c in row)
        return {r: found[r] for r in REASONS if found[r]}

    def at_least(self, level: str) -> bool:
        """Whether any cell is at least as bad as `level` (`--fail-on`)."""
        bar = severity(level)
        return any(severity(c.level) >= bar for row in self.cells for c in row)

    # -- the summary ----------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Per object and build, works / works with warnings / fails / unknown
        (programs attaching one target through different mechanisms count as
        alternatives: the best of them decides), and the causes over all
        objects: per reason code, the cells and the objects it affects."""
        objects = self.objects or [
            ObjectDeps(name="dependencies", dependencies=tuple(range(len(self.cells))))
        ]
        rows: list[dict[str, Any]] = []
        for obj in objects:
            levels = [self._object_level(obj, k) for k in range(len(self.columns))]
            rows.append(
                {
                    "object": obj.name,
                    "results": {c.build: VERDICTS[lv] for c, lv in zip(self.columns, levels)},
                }
            )
        per_build = {
            c.build: {v: sum(r["results"][c.build] == v for r in rows) for v in VERDICTS.values()}
            for c in self.columns
        }
        causes = []
        for reason in REASONS:
            if reason == "ok":
                continue
            cells = sum(c.reason == reason for row in self.cells for c in row)
            if not cells:
                continue
            hit = sum(
                any(
                    self.cells[d][k].reason == reason
                    for d in obj.dependencies
                    for k in range(len(self.columns))
                )
                for obj in objects
            )
            causes.append({"reason": reason, "level": REASON_LEVELS[reason], "cells": cells, "objects": hit})
        affected = {c.build: sum(r["results"][c.build] not in ("works",) for r in rows) for c in self.columns}
        return {"objects": rows, "builds": per_build, "affected": affected, "causes": causes}

    def _object_level(self, obj: ObjectDeps, column: int) -> str:
        """The worst level of an object's dependencies on one build, each group
        of alternatives (Dependency targets sharing _alternative()) at its best."""
        groups: dict[tuple[str, ...], str] = {}
        for d in obj.dependencies:
            dep, level = self.dependencies[d], self.cells[d][column].level
            key = _alternative(dep) or (str(d),)
            old = groups.get(key)
            groups[key] = level if old is None else min(old, level, key=severity)
        return max(groups.values(), key=severity, default="ok")

    # -- output -----------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: the builds, each dependency with its
        results by build (level, text, reason), the notes and the summary."""
        return {
            "builds": [
                {"build": c.build, "label": c.label, "group": c.group, "worst": self.worst(k)}
                for k, c in enumerate(self.columns)
            ],
            "dependencies": [
                {
                    "kind": d.kind,
                    "name": d.name,
                    "attach": d.attach,
                    "detail": d.detail,
                    "programs": list(d.programs),
                    "spec": spec(d),
                    "results": {
                        c.build: {
                            "level": cell.level,
                            "text": cell.text,
                            "reason": cell.reason,
                            **(
                                {"suggestions": [x.as_dict() for x in cell.suggestions]}
                                if cell.suggestions
                                else {}
                            ),
                        }
                        for c, cell in zip(self.columns, row)
                    },
                }
                for d, row in zip(self.dependencies, self.cells)
            ],
            "counts": self.counts(),
            "reasons": self.reason_counts(),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "summary": self.summary(),
        }

    def _marks(self) -> tuple[list[list[str]], dict[tuple[str, str], int]]:
        """Each cell's mark with its note number, and the numbered notes (level, text)."""
        notes: dict[tuple[str, str], int] = {}
        marks = []
        for row in self.cells:
            line = []
            for cell in row:
                mark = MARKS[cell.level]
                if cell.level != "ok":
                    mark += str(notes.setdefault((cell.reason, cell.text), len(notes) + 1))
                line.append(mark)
            marks.append(line)
        return marks, notes

    def _suggestions(self) -> dict[tuple[str, str], tuple[Suggestion, ...]]:
        """(dependency text, build label) -> its suggestions, for the cells that have some."""
        return {
            (spec(d), c.label): cell.suggestions
            for d, row in zip(self.dependencies, self.cells)
            for c, cell in zip(self.columns, row)
            if cell.suggestions
        }

    def _total(self) -> str:
        counts = self.counts()
        return f"{len(self.dependencies)} dependencies × {len(self.columns)} builds: " + ", ".join(
            f"{counts[lv]} {lv}" for lv in LEVELS if counts[lv]
        )

    def text(self) -> str:
        """A terminal table: one row per dependency, one column per build."""
        if not self.columns:
            return "no builds in the database"
        heads = [c.label for c in self.columns]
        names = [spec(d) for d in self.dependencies]
        name_w = max([len(n) for n in names] + [10])
        widths = [max(len(h), 2) for h in heads]
        marks, notes = self._marks()
        lines = [" " * name_w + "  " + "  ".join(h.ljust(w) for h, w in zip(heads, widths))]
        for n, row in zip(names, marks):
            lines.append(n.ljust(name_w) + "  " + "  ".join(m.ljust(w) for m, w in zip(row, widths)).rstrip())
        if notes:
            lines += [""] + [f"  {k}: {text} [{reason}]" for (reason, text), k in notes.items()]
        ways = self._suggestions()
        if ways:
            lines += ["", "instead:"]
            for (name, label), found in ways.items():
                lines.append(f"  {name} on {label}:")
                lines += [f"    {x.kind}: {x.text()}" for x in found]
        lines += ["", self._total()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The table as GitHub Markdown (job summaries, PR comments): dependencies
        × builds, numbered reasons with their codes below."""
        if not self.columns:
            return "no builds in the database"
        marks, notes = self._marks()
        lines = [
            "| dependency | " + " | ".join(_md(c.label) for c in self.columns) + " |",
            "|---|" + "---|" * len(self.columns),
        ]
        for dep, row in zip(self.dependencies, marks):
            lines.append(f"| `{spec(dep)}` | " + " | ".join(row) + " |")
        if notes:
            lines += ["", "**Reasons**", ""]
            lines += [f"{k}. {_md(text)} (`{reason}`)" for (reason, text), k in notes.items()]
        ways = self._suggestions()
        if ways:
            lines += ["", "**Instead**", ""]
            for (name, label), found in ways.items():
                lines.append(f"- `{name}` on {_md(label)}:")
                lines += [
                    f"  - {x.kind}: `{x.target}`"
                    + {True: " ✓", False: " ✗", None: ""}[x.attachable]
                    + f" ({_md(x.evidence)})"
                    for x in found
                ]
        lines += ["", self._total()]
        lines += [f"> {_md(n)}" for n in self.notes]
        return "\n".join(lines)

    def summary_text(self, markdown: bool = False) -> str:
        """The summary (see summary()) as a terminal or Markdown table."""
        s = self.summary()
        heads = [c.label for c in self.columns]
        table = [["object", *heads]] + [
            [r["object"], *(r["results"][c.build] for c in self.columns)] for r in s["objects"]
        ]
        table.append(
            ["affected", *(f"{s['affected'][c.build]} of {len(s['objects'])}" for c in self.columns)]
        )
        causes = [["reason", "level", "cells", "objects"]] + [
            [c["reason"], c["level"], str(c["cells"]), str(c["objects"])] for c in s["causes"]
        ]
        if markdown:
            return "\n".join([*_md_table(table), "", "**Causes**", "", *_md_table(causes)])
        return "\n".join([*_plain_table(table), "", "causes:", *_plain_table(causes)])


def _alternative(dep: Dependency) -> tuple[str, ...] | None:
    """The key shared by targets that are alternatives of one another: a
    function attached on entry (kprobe, fentry) or on return (kretprobe,
    fexit), an event through tracepoint, raw_tp or tp_btf. None for the rest."""
    if dep.attach in ("kprobe", "fentry", "kprobe.multi", "kprobe.session"):
        return ("entry", dep.name)
    if dep.attach in ("kretprobe", "fexit", "kretprobe.multi"):
        return ("return", dep.name)
    if dep.kind in ("tracepoint", "raw_tracepoint") and dep.attach:
        return ("event", dep.name)
    return None


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(_md(c) for c in rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(_md(c) for c in row) + " |" for row in rows[1:]),
    ]


def _plain_table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
