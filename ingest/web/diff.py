"""/diff/<a>/<b>: the stored changes between two builds, filtered and paged."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ingest.queries import changes as changes_q
from ingest.queries.changes import ChangeFilter
from ingest.web.context import Context, Links, Page

DIFF_PAGE_SIZE = 100


@dataclass
class CountGroup:
    """The changes of one item kind: their total and the count per change kind."""

    item: str
    total: int = 0
    rows: list[dict[str, object]] = field(default_factory=list)


def page_number(raw: str | None) -> int:
    """A 1-based page number from a URL parameter (1 when missing or not a number)."""
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


def diff_page(
    conn: sqlite3.Connection, ctx: Context, links: Links, a: str, b: str, only: ChangeFilter, page: int
) -> Page:
    """Counts per kind and one page of the changes of the pair a, b (stored either way round)."""
    names = {build.name: build for build in ctx.builds.values()}
    out: Page = {
        "a": a,
        "b": b,
        "known": a in names and b in names,
        "builds": list(names),
        "item": only.item,
        "change": only.change,
        "q": only.name,
        "page": page,
        "computed": False,
        "tables": ctx.diffs,
        "rows": [],
        "counts": [],
        "pairs": [],
    }
    if not ctx.diffs or not out["known"]:
        return out
    stored = changes_q.diff_pairs(conn)
    out["pairs"] = [
        (ctx.builds[p.build_a].name, ctx.builds[p.build_b].name)
        for p in stored
        if p.build_a in ctx.builds and p.build_b in ctx.builds
    ]
    ids = {(p.build_a, p.build_b): p.id for p in stored}
    ia, ib = names[a].id, names[b].id
    if (ia, ib) in ids:
        pair, reversed_ = ids[(ia, ib)], False
    elif (ib, ia) in ids:
        pair, reversed_ = ids[(ib, ia)], True
    else:
        return out
    out["reversed"] = reversed_
    out["computed"] = True
    counts = changes_q.change_counts(conn, pair)
    out["counts"], out["count_groups"] = _count_rows(counts)
    total = out["total"] = _filtered_total(conn, pair, only, counts)
    out["pages"] = max(1, -(-total // DIFF_PAGE_SIZE))
    out["rows"] = [
        r._asdict() for r in changes_q.changes(conn, pair, only, DIFF_PAGE_SIZE, (page - 1) * DIFF_PAGE_SIZE)
    ]
    stored_a, stored_b = (b, a) if reversed_ else (a, b)
    out["links"] = links.data(
        "diff_between_builds",
        build_a=stored_a,
        build_b=stored_b,
        item_kind=only.item or "",
        change_kind=only.change or "",
        name=only.name or "",
    )
    return out


def _count_rows(counts: list[changes_q.ChangeCount]) -> tuple[list[dict[str, object]], list[CountGroup]]:
    """The per-kind count rows, and the same rows grouped by item kind with their totals."""
    rows: list[dict[str, object]] = [
        {"item": c.item, "change": c.change, "count": c.n_changes, "n_items": c.n_items} for c in counts
    ]
    groups: dict[str, CountGroup] = {}
    for c, row in zip(counts, rows):
        group = groups.setdefault(c.item, CountGroup(item=c.item))
        group.total += c.n_changes
        group.rows.append(row)
    return rows, list(groups.values())


def _filtered_total(
    conn: sqlite3.Connection, pair: int, only: ChangeFilter, counts: list[changes_q.ChangeCount]
) -> int:
    """How many changes of the pair pass the filter (a name filter needs a query;
    the per-kind counts already say for the others)."""
    if only.name:
        return changes_q.count_changes(conn, pair, only)
    return sum(
        c.n_changes
        for c in counts
        if (not only.item or c.item == only.item) and (not only.change or c.change == only.change)
    )
