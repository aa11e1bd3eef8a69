"""Writing the manifests' groups of builds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from ingest.db.sql import next_id, transaction
from ingest.queries.builds import StoredGroup


def store_groups(conn: sqlite3.Connection, groups: Iterable[StoredGroup]) -> None:
    """Replace the groups and their members with `groups`, in one transaction.

    Groups keep their id when their name is unchanged, so rows that refer to a
    group (e.g. computed differences) stay valid; groups not listed are deleted.
    Position follows the list order; member position 0 is a variants group's baseline.
    """
    groups = list(groups)
    with transaction(conn):
        old = dict(conn.execute("SELECT name, id FROM groups"))
        wanted = {name for name, _, _ in groups}
        for name, gid in old.items():
            if name not in wanted:
                conn.execute("DELETE FROM group_members WHERE group_id = ?", (gid,))
                conn.execute("DELETE FROM groups WHERE id = ?", (gid,))
        free_id = next_id(conn, "groups")
        for position, (name, kind, members) in enumerate(groups):
            gid = old.get(name)
            if gid is None:
                gid, free_id = free_id, free_id + 1
                conn.execute(
                    "INSERT INTO groups (id, name, kind, position) VALUES (?,?,?,?)",
                    (gid, name, kind, position),
                )
            else:
                conn.execute("UPDATE groups SET kind = ?, position = ? WHERE id = ?", (kind, position, gid))
                conn.execute("DELETE FROM group_members WHERE group_id = ?", (gid,))
            conn.executemany(
                "INSERT INTO group_members (group_id, position, build_id, label) VALUES (?,?,?,?)",
                [(gid, k, build, label) for k, (build, label) in enumerate(members)],
            )
