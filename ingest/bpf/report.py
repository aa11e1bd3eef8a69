"""The report of `kernsurf check`: dependencies × builds, one Cell each,
as a terminal table or as a dict for JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.bpf.objects import Dependency
from ingest.bpf.spec import spec

LEVELS = ("ok", "warn", "fail", "unknown")
MARKS = {"ok": "✓", "warn": "⚠", "fail": "✗", "unknown": "?"}
_SEVERITY = {"ok": 0, "unknown": 1, "warn": 2, "fail": 3}


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
class Cell:
    level: str  # one of LEVELS
    text: str  # "ok", "absent", "inlined (Full)", "not attachable (notrace)", ...


@dataclass(slots=True)
class Report:
    dependencies: list[Dependency]
    columns: list[Column]
    cells: list[list[Cell]] = field(default_factory=list)  # [dependency][column]
    # Problems that did not stop the check: "prog.o: unknown program section 'foo' (not checked)".
    warnings: list[str] = field(default_factory=list)

    def worst(self, column: int) -> str:
        """The worst level of one column."""
        return max((row[column].level for row in self.cells), key=severity, default="ok")

    def counts(self) -> dict[str, int]:
        """How many cells have each level."""
        return {level: sum(c.level == level for row in self.cells for c in row) for level in LEVELS}

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: the builds, then each dependency with its results by build."""
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
                        c.build: {"level": cell.level, "text": cell.text}
                        for c, cell in zip(self.columns, row)
                    },
                }
                for d, row in zip(self.dependencies, self.cells)
            ],
        }

    def text(self) -> str:
        """A terminal table: one row per dependency, one column per build."""
        if not self.columns:
            return "no builds in the database"
        heads = [c.label for c in self.columns]
        names = [spec(d) for d in self.dependencies]
        name_w = max([len(n) for n in names] + [10])
        widths = [max(len(h), 2) for h in heads]
        lines = [" " * name_w + "  " + "  ".join(h.ljust(w) for h, w in zip(heads, widths))]
        notes: dict[str, int] = {}
        for n, row in zip(names, self.cells):
            marks = []
            for cell, w in zip(row, widths):
                mark = MARKS[cell.level]
                if cell.level != "ok":
                    mark += str(notes.setdefault(cell.text, len(notes) + 1))
                marks.append(mark.ljust(w))
            lines.append(n.ljust(name_w) + "  " + "  ".join(marks).rstrip())
        if notes:
            lines += [""] + [f"  {k}: {text}" for text, k in notes.items()]
        counts = self.counts()
        lines += [
            "",
            f"{len(self.dependencies)} dependencies × {len(self.columns)} builds: "
            + ", ".join(f"{counts[lv]} {lv}" for lv in LEVELS if counts[lv]),
        ]
        return "\n".join(lines)
