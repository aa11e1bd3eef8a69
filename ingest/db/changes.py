"""Writing the stored differences of pairs of builds (ingest.changes computes them)."""

from __future__ import annotations

import sqlite3
import time
from typing import NamedTuple

from ingest.db.sql import next_id, transaction, utils
from ingest.queries.names import name_ids


class ChangeRow(NamedTuple):
    """One change to store (ingest.changes.diff.Change.stored_row)."""

    item_kind: str
    name: str
    change_kind: str
    detail: str | None
    old: str | None
    new: str | None


def store_diff(
    conn: sqlite3.Connection,
    build_a: int,
    build_b: int,
    group_id: int | None,
    changes: list[ChangeRow],
    stamp: str = "",
    seconds: float | None = None,
) -> int:
    """Store the differences of one pair of builds, replacing any stored for
    that pair, in one transaction; returns the pair's id."""
    with transaction(conn):
        old = conn.execute(
            "SELECT id FROM diff_pairs WHERE build_a = ? AND build_b = ?", (build_a, build_b)
        ).fetchone()
        if old:
            _delete_pair(conn, old[0])
        pair = next_id(conn, "diff_pairs")
        conn.execute(
            "INSERT INTO diff_pairs (id, group_id, build_a, build_b, stamp, computed_at, seconds, n_changes)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                pair,
                group_id,
                build_a,
                build_b,
                stamp,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                seconds,
                len(changes),
            ),
        )
        wanted = {c.name for c in changes}
        ids = name_ids(conn, wanted)
        if len(ids) < len(wanted):  # names no build has (only when called by hand)
            names = utils(conn).table("names")
            ids = {name: ids.get(name) or names.lookup({"name": name}) for name in wanted}
        conn.executemany(  # the view's triggers store each row where it belongs (schema.sql)
            "INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)"
            " VALUES (?,?,?,?,?,?,?)",
            [(pair, c.item_kind, ids[c.name], c.change_kind, c.detail, c.old, c.new) for c in changes],
        )
    return pair


def set_pair_group(conn: sqlite3.Connection, pair: int, group_id: int | None) -> None:
    """Record which group defines a stored pair (None: ad hoc)."""
    conn.execute("UPDATE diff_pairs SET group_id = ? WHERE id = ?", (group_id, pair))


def delete_diff_pairs(conn: sqlite3.Connection, pairs: list[int]) -> None:
    """Delete stored pairs and their changes, in one transaction."""
    with transaction(conn):
        for pair in pairs:
            _delete_pair(conn, pair)


#: Where the view `changes` keeps its rows: names alone as bitmaps, the others row by row.
CHANGE_TABLES = ("change_sets", "change_details")


def delete_pairs_of(conn: sqlite3.Connection, build: int) -> None:
    """Delete the stored pairs `build` is in, with their changes (inside the caller's transaction)."""
    for (pair,) in conn.execute(
        "SELECT id FROM diff_pairs WHERE build_a = ? OR build_b = ?", (build, build)
    ).fetchall():
        _delete_pair(conn, pair)


def _delete_pair(conn: sqlite3.Connection, pair: int) -> None:
    for table in CHANGE_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE pair_id = ?", (pair,))
    conn.execute("DELETE FROM diff_pairs WHERE id = ?", (pair,))
