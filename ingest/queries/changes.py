"""Changes: the pairs of builds groups compare, the stored pairs, the change
vocabulary, and the stored changes of a pair or of an item."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from ingest import groups

# --------------------------------------------------------------------------- pairs


class GroupPair(NamedTuple):
    """A pair of builds a group compares: A before (or the baseline of) B."""

    group_id: int
    build_a: int
    build_b: int


def group_pairs(conn: sqlite3.Connection) -> list[GroupPair]:
    """Every pair the groups define (ingest.groups.pairs: consecutive members of a
    series, the baseline against each other member of variants). Groups in display
    order; a pair defined twice, or a build compared with itself, is listed once or not at all."""
    out: list[GroupPair] = []
    seen: set[tuple[int, int]] = set()
    for gid, kind in conn.execute("SELECT id, kind FROM groups ORDER BY position, id").fetchall():
        members = [
            b
            for (b,) in conn.execute(
                "SELECT build_id FROM group_members WHERE group_id = ? ORDER BY position", (gid,)
            )
        ]
        for a, b in groups.pairs(kind, members):
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                out.append(GroupPair(gid, a, b))
    return out


class StoredPair(NamedTuple):
    """A stored pair of diff_pairs."""

    id: int
    build_a: int
    build_b: int
    group_id: int | None  # None: ad hoc (`kernsurf diff --store`)
    stamp: str
    n_changes: int


_PAIRS = "SELECT id, build_a, build_b, group_id, stamp, n_changes FROM diff_pairs"


def stored_pairs(conn: sqlite3.Connection) -> dict[tuple[int, int], StoredPair]:
    """{(build A, build B): the stored pair} of the stored differences."""
    return {(p.build_a, p.build_b): p for p in map(StoredPair._make, conn.execute(_PAIRS))}


def diff_pairs(conn: sqlite3.Connection) -> list[StoredPair]:
    """Every stored pair: group pairs in group order, then ad-hoc ones."""
    return list(map(StoredPair._make, conn.execute(_PAIRS + " ORDER BY group_id IS NULL, group_id, id")))


# --------------------------------------------------------------------------- the change vocabulary


class ChangeKind(NamedTuple):
    """One entry of the change vocabulary (the change_kinds table)."""

    name: str
    items: str


def change_kinds(conn: sqlite3.Connection) -> list[ChangeKind]:
    """The change vocabulary in display order (schema.sql)."""
    return list(map(ChangeKind._make, conn.execute("SELECT name, items FROM change_kinds ORDER BY position")))


# --------------------------------------------------------------------------- stored changes


class ChangeCount(NamedTuple):
    item: str
    change: str
    n_changes: int
    n_items: int  # distinct items changed


#: Functions first, then structs, unions, enums (an ORDER BY term; `c` is the changes alias).
_ITEM_ORDER = "CASE c.item_kind WHEN 'function' THEN 0 WHEN 'struct' THEN 1 WHEN 'union' THEN 2 ELSE 3 END"


def change_counts(conn: sqlite3.Connection, pair: int) -> list[ChangeCount]:
    """Changes and distinct items per item kind and change kind of one pair.

    Read from the two tables behind the view `changes`: a bare-name change is a
    bit of change_sets (counted in Python: a pair has a few thousand blocks), the
    others are counted per kind by SQLite; expanding the bitmaps through the view
    took 0.4 s for a pair of 250 000 changes."""
    found: dict[tuple[str, str], list] = {}  # (item, change) -> [changes, items, order]
    for item, change, position, bits in conn.execute(
        "SELECT i.name, k.name, k.position, s.bits FROM change_sets s JOIN item_kinds i ON i.id = s.item_kind_id"
        " JOIN change_kinds k ON k.position = s.change_kind_id WHERE s.pair_id = ?",
        (pair,),
    ):
        n = (bits & _ALL_BITS).bit_count()  # one name per bit: changes and items alike
        entry = found.setdefault((item, change), [0, 0, position])
        entry[0] += n
        entry[1] += n
    for item, change, position, n, items in conn.execute(
        "SELECT i.name, k.name, k.position, count(*), count(DISTINCT d.name_id) FROM change_details d"
        " JOIN item_kinds i ON i.id = d.item_kind_id JOIN change_kinds k ON k.position = d.change_kind_id"
        " WHERE d.pair_id = ? GROUP BY d.item_kind_id, d.change_kind_id",
        (pair,),
    ):
        if (item, change) in found:  # in both tables: count the names once
            items = conn.execute(
                "SELECT count(DISTINCT name_id) FROM changes WHERE pair_id = ? AND item_kind = ? AND change_kind = ?",
                (pair, item, change),
            ).fetchone()[0]
            found[(item, change)][0] += n
            found[(item, change)][1] = items
        else:
            found[(item, change)] = [n, items, position]
    order = {"function": 0, "struct": 1, "union": 2}
    return [
        ChangeCount(item, change, n, items)
        for (item, change), (n, items, _) in sorted(
            found.items(), key=lambda kv: (order.get(kv[0][0], 3), kv[0][0], kv[1][2])
        )
    ]


_ALL_BITS = (1 << 64) - 1  # a stored block's bits, read as unsigned


class ChangeFilter(NamedTuple):
    item: str | None = None  # item kind
    change: str | None = None  # change kind
    name: str | None = None  # substring of the item's name


def _where(pair: int, only: ChangeFilter) -> tuple[str, list[object]]:
    where: list[str] = ["c.pair_id = ?"]
    params: list[object] = [pair]
    if only.item:
        where.append("c.item_kind = ?")
        params.append(only.item)
    if only.change:
        where.append("c.change_kind = ?")
        params.append(only.change)
    if only.name:
        where.append("instr(n.name, ?) > 0")
        params.append(only.name)
    base = (
        "FROM changes c JOIN names n ON n.id = c.name_id LEFT JOIN change_kinds k ON k.name = c.change_kind"
        " WHERE " + " AND ".join(where)
    )
    return base, params


def count_changes(conn: sqlite3.Connection, pair: int, only: ChangeFilter) -> int:
    """How many changes of the pair pass the filter."""
    base, params = _where(pair, only)
    return conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]


class ChangeRow(NamedTuple):
    item: str
    name: str
    change: str
    detail: str | None
    old: str | None
    new: str | None


def changes(
    conn: sqlite3.Connection, pair: int, only: ChangeFilter, limit: int, offset: int
) -> list[ChangeRow]:
    """One page of the pair's changes, by item kind, name and change kind; old and
    new that the stored row leaves out (a function's prototype) come from change_list."""
    base, params = _where(pair, only)
    out = []
    for item, name, change, detail, old, new, nid in conn.execute(
        f"SELECT c.item_kind, n.name, c.change_kind, c.detail, c.old, c.new, c.name_id {base}"
        f" ORDER BY {_ITEM_ORDER}, n.name, k.position, c.detail LIMIT ? OFFSET ?",
        params + [limit, offset],
    ):
        if old is None and new is None:
            old, new = conn.execute(
                "SELECT old, new FROM change_list WHERE pair_id = ? AND name_id = ? AND change_kind = ?"
                " AND detail IS ? LIMIT 1",
                (pair, nid, change, detail),
            ).fetchone() or (None, None)
        out.append(ChangeRow(item=item, name=name, change=change, detail=detail, old=old, new=new))
    return out


class ItemChange(NamedTuple):
    pair_id: int
    kind: str
    change: str
    detail: str | None
    old: str | None
    new: str | None


def item_changes(conn: sqlite3.Connection, nid: int, kinds: tuple[str, ...]) -> list[ItemChange]:
    """Every stored change of one item (of these item kinds), per pair in vocabulary order."""
    # One search per pair (change_details is keyed by pair, then name): the pairs are
    # named as values, which SQLite hands down into the view; a subquery it would not.
    pairs = [i for (i,) in conn.execute("SELECT id FROM diff_pairs")]
    return [
        ItemChange(*r)
        for r in conn.execute(
            "SELECT c.pair_id, c.item_kind, c.change_kind, c.detail, c.old, c.new FROM change_list c"
            " LEFT JOIN change_kinds k ON k.name = c.change_kind"
            f" WHERE c.pair_id IN ({','.join('?' * len(pairs))}) AND c.name_id = ?"
            f" AND c.item_kind IN ({','.join('?' * len(kinds))})"
            " ORDER BY c.pair_id, k.position, c.detail",
            (*pairs, nid, *kinds),
        )
    ]


class PairChange(NamedTuple):
    """A stored change of one named item between two builds."""

    kind: str  # the change kind: "param type changed", "field removed", ...
    detail: str | None  # what changed within the item: a parameter, a field path
    old: str | None
    new: str | None


def changes_between(
    conn: sqlite3.Connection,
    before: int,
    after: int,
    name: str,
    kinds: Sequence[str],
    item_kind: str | None = None,
) -> list[PairChange]:
    """The stored changes of kinds `kinds` to the items named `name` (of
    `item_kind`, or of any kind) between builds `before` and `after`."""
    # The pair and the name as values: SQLite hands those down into the view, not subqueries.
    pair = conn.execute(
        "SELECT id FROM diff_pairs WHERE build_a = ? AND build_b = ?", (before, after)
    ).fetchone()
    nid = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
    if pair is None or nid is None:
        return []
    query = (
        "SELECT change_kind, detail, old, new FROM changes WHERE pair_id = ? AND name_id = ?"
        f" AND change_kind IN ({','.join('?' * len(kinds))})" + (" AND item_kind = ?" if item_kind else "")
    )
    params = (pair[0], nid[0], *kinds, *((item_kind,) if item_kind else ()))
    return list(map(PairChange._make, conn.execute(query, params)))
