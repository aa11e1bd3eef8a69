"""Colours and legends of the status strips, the matrix picture and the charts."""

from __future__ import annotations

#: Cell colours per status class (the strip, the legend, the matrix picture).
COLOURS = {
    "ok": "#5cb85c",
    "F": "#d9534f",
    "S": "#f2c94c",
    "T": "#8ec5ea",
    "D": "#f0ad4e",
    "C": "#f0883e",
    "O": "#c9c9c9",
    "delta": "#ffffff",
    "absent": "#ececec",
    "nodwarf": "#c7d6ea",
}

#: (class, letter, text) of the function and struct strips, in legend order.
LEGEND = [
    ("ok", "", "✅ no issue"),
    ("F", "F", "Full inline (no symbol to attach to)"),
    ("S", "S", "Selective inline"),
    ("T", "T", "Transformed (.isra, .constprop, .part, .cold, …)"),
    ("D", "D", "Duplicate (a static helper, one copy per compile unit)"),
    ("C", "C", "Collision (several functions share the name)"),
    ("O", "O", "Declared only"),
    ("delta", "Δ", "changed vs the previous build (vs the baseline for variants)"),
    ("absent", "", "absent"),
    ("nodwarf", "?", "no DWARF: inlining unknown"),
]

#: Strip class and letter of a surface item's worst `kernsurf check` verdict in a build.
SURFACE_CLASSES = {"ok": "ok", "warn": "S", "fail": "F", "unknown": "nodwarf"}
SURFACE_LETTERS = {"ok": "", "warn": "W", "fail": "✗", "unknown": "?"}
SURFACE_LEGEND = [
    ("ok", "", "✅ every attach type works"),
    ("S", "W", "works, but look (see the status line)"),
    ("F", "✗", "present, but an attach type fails"),
    ("nodwarf", "?", "not recorded for this build"),
    ("delta", "Δ", "changed vs the previous build (vs the baseline for variants)"),
    ("absent", "", "absent"),
]
