"""The groups x builds loop of the item pages, written once: one status line
per group member, one strip cell per member, and a Δ where the item differs
from the member it is compared with (ingest.groups: the previous build of a
series, the baseline of variants)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import NamedTuple

from ingest.groups import comparisons
from ingest.queries.builds import BuildRow
from ingest.web.context import Group, Member


class Column(NamedTuple):
    """One member of one group, as a column of the matrix or a line of a page."""

    group: Group
    position: int  # in the group
    member: Member
    base: Member | None  # the member it is compared with
    anchor: str  # the HTML id of its status line


def columns(groups: list[Group]) -> list[Column]:
    """Every member of every group, in order, with the member it is compared with."""
    return [
        Column(group, k, member, base, f"g{gi}-{k}")
        for gi, group in enumerate(groups)
        for k, (member, base) in enumerate(comparisons(group.kind, group.members))
    ]


class Verdict(NamedTuple):
    """What a page says about its item in one build."""

    status: str  # the status line
    letters: str  # strip letters (Δ is added by the timeline)
    cls: str  # strip colour class (ingest.web.style.COLOURS)
    fields: dict[str, object]  # the page's own fields of the status line


#: (compared build id, build id) -> whether the item changed there, from the stored
#: diffs of that pair (ingest.web.items.stored_deltas); a pair not in it is compared by state.
Deltas = dict[tuple[int, int], bool]


class Timeline(NamedTuple):
    groups: list[dict[str, object]]  # {"name", "kind", "rows"}
    strip: list[dict[str, object]]  # one cell per column


def timeline(
    groups: list[Group],
    state: Callable[[BuildRow], Hashable],
    describe: Callable[[BuildRow], Verdict],
    deltas: Deltas | None = None,
) -> Timeline:
    """Status lines per group and the strip: a Δ where `deltas` (the stored
    diffs) say the item changed, else, for pairs not stored, where `state`
    differs; `describe` is the page's verdict on the item in one build."""
    states: dict[int, Hashable] = {}

    def state_of(build: BuildRow) -> Hashable:
        if build.id not in states:
            states[build.id] = state(build)
        return states[build.id]

    out: list[dict[str, object]] = []
    strip: list[dict[str, object]] = []
    rows: list[dict[str, object]] = []
    for col in columns(groups):
        if col.position == 0:
            rows = []
            out.append({"name": col.group.name, "kind": col.group.kind, "rows": rows})
        build, label = col.member.build, col.member.label
        changed = False
        if col.base is not None:
            stored = (deltas or {}).get((col.base.build.id, build.id))
            changed = stored if stored is not None else state_of(build) != state_of(col.base.build)
        verdict = describe(build)
        letters = verdict.letters + ("Δ" if changed else "")
        rows.append(
            {
                "label": label,
                "build": build.name,
                "anchor": col.anchor,
                "status": verdict.status,
                "letters": letters,
                "cls": verdict.cls,
                "changed": changed,
                **verdict.fields,
            }
        )
        strip.append(
            {
                "group": col.group.name,
                "first": col.position == 0,
                "label": label,
                "build": build.name,
                "letters": letters,
                "cls": verdict.cls,
                "anchor": col.anchor,
                "title": f"{label} ({build.name}): {verdict.status}" + (" Δ" if changed else ""),
            }
        )
    return Timeline(groups=out, strip=strip)
