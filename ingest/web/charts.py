"""SVG geometry of the matrix picture and the builds summary charts: plain
numbers the templates draw, no drawing library and no script."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from ingest.web.style import COLOURS


class MatrixColumn(NamedTuple):
    label: str
    build: str  # the build's name
    first: bool  # first of its group: a gap before it


class MatrixCell(NamedTuple):
    letters: str
    cls: str
    title: str


class MatrixRow(NamedTuple):
    name: str
    kind: str | None  # "function", "struct", a surface kind (queries.surfaces.SURFACE_KINDS); None: unknown
    cells: list[MatrixCell]


def matrix_picture(columns: Sequence[MatrixColumn], rows: Sequence[MatrixRow]) -> dict[str, object]:
    """Geometry of the matrix as an SVG picture: a row per name, a column per
    build, groups separated by a gap."""
    cell_w, cell_h, gap, group_gap = 30, 20, 2, 8
    left = min(320, 16 + 7.5 * max((len(r.name) for r in rows), default=4))
    top = 14 + 7 * max((len(c.label) for c in columns), default=4)
    xs, x = [], left
    for k, c in enumerate(columns):
        if c.first and k:
            x += group_gap
        xs.append(x)
        x += cell_w + gap
    heads = [
        {"x": xs[k] + cell_w / 2 + 4, "y": top - 6, "label": c.label, "title": c.build}
        for k, c in enumerate(columns)
    ]
    out_rows = []
    for i, r in enumerate(rows):
        y = top + i * (cell_h + gap)
        cells = [
            {
                "x": xs[k],
                "fill": COLOURS[c.cls],
                "letters": c.letters,
                "title": c.title,
                "ink": "#fff" if c.cls == "F" else "#111",
            }
            for k, c in enumerate(r.cells)
        ]
        out_rows.append({"y": y, "name": r.name, "kind": r.kind, "cells": cells})
    return {
        "width": round(x + 4),
        "height": round(top + len(rows) * (cell_h + gap) + 4),
        "left": left,
        "cell_w": cell_w,
        "cell_h": cell_h,
        "heads": heads,
        "rows": out_rows,
    }


class Counted(Protocol):
    """A row of the builds summary, as the charts read it."""

    @property
    def name(self) -> str: ...

    def count(self, key: str) -> int: ...


#: (count, label, colour) of the stacked bar per build.
CHART_SERIES = [
    ("plain", "No inline", "#5cb85c"),
    ("selective", "Selective inline", "#f2c94c"),
    ("full", "Full inline", "#d9534f"),
    ("declared", "Declared only", "#9e9e9e"),
]


def summary_chart(rows: Sequence[Counted]) -> dict[str, object]:
    """Geometry of a stacked horizontal bar per build: functions by inline status."""
    width, label_w, bar_h, gap = 720, 170, 22, 10
    top = 34
    biggest = max((r.count("functions") for r in rows), default=0) or 1
    scale = (width - label_w - 70) / biggest
    bars = []
    for k, r in enumerate(rows):
        y = top + k * (bar_h + gap)
        x: float = label_w
        parts = []
        for key, label, colour in CHART_SERIES:
            w = r.count(key) * scale
            parts.append(
                {
                    "x": round(x, 1),
                    "w": round(w, 1),
                    "colour": colour,
                    "title": f"{r.name}: {label} {r.count(key):,}",
                }
            )
            x += w
        bars.append(
            {"y": y, "label": r.name, "parts": parts, "total": r.count("functions"), "end": round(x + 6, 1)}
        )
    legend, lx = [], label_w
    for _, label, colour in CHART_SERIES:
        legend.append({"x": lx, "label": label, "colour": colour})
        lx += 24 + 8 * len(label)
    return {
        "width": width,
        "height": top + len(rows) * (bar_h + gap) + 4,
        "bar_h": bar_h,
        "bars": bars,
        "legend": legend,
        "label_w": label_w,
    }


#: (count, label, colour) of the grouped bars.
BAR_SERIES = [
    ("transformed", "Transformed", "#56a0d3"),
    ("collisions", "Collisions", "#f0883e"),
    ("duplicates", "Duplicates", "#b07cc6"),
    ("selective", "Selective inline", "#f2c94c"),
]


def summary_bars(rows: Sequence[Counted]) -> dict[str, object]:
    """Geometry of grouped vertical bars: per metric, one bar per build."""
    n = max(len(rows), 1)
    bar_w = max(8, min(36, 160 // n))
    group_w = n * bar_w + 30
    height, top, bottom = 240, 20, 40
    biggest = max((r.count(k) for r in rows for k, _, _ in BAR_SERIES), default=0) or 1
    scale = (height - top - bottom) / biggest
    groups = []
    for g, (key, label, colour) in enumerate(BAR_SERIES):
        x0 = 50 + g * group_w
        bars = []
        for k, r in enumerate(rows):
            h = r.count(key) * scale
            bars.append(
                {
                    "x": x0 + k * bar_w,
                    "y": round(height - bottom - h, 1),
                    "h": round(h, 1),
                    "w": bar_w - 2,
                    "colour": colour,
                    "opacity": 0.55 + 0.45 * (k + 1) / n,
                    "title": f"{r.name}: {label} {r.count(key):,}",
                    "value": r.count(key),
                }
            )
        groups.append({"label": label, "x": x0 + (n * bar_w) / 2, "bars": bars})
    return {
        "width": 50 + len(BAR_SERIES) * group_w,
        "height": height,
        "base": height - bottom,
        "groups": groups,
        "max": biggest,
    }
