"""The per-build counts build_summary reads from `builds` (computed once, when a build is stored)."""

from __future__ import annotations

import sqlite3

from ingest.db.sql import transaction

#: build_summary's counts over functions and types that builds stores: column -> the view's column.
SUMMARY_COUNTS = {
    "n_full_inline": "full_inline",  # first: NULL when the counts are not stored
    "n_selective_inline": "selective_inline",
    "n_declared_only": "declared_only",
    "n_transformed": "transformed",
    "n_collisions": "collisions",
    "n_duplicates": "duplicates",
    "n_kprobe_ok": "kprobe_ok",
    "n_fentry_ok": "fentry_ok",
    "n_notrace": "notrace",
    "n_module_functions": "module_functions",
    "n_struct_types": "structs",
    "n_union_types": "unions",
    "n_enum_types": "enums",
}
NULLS = ", ".join(["NULL"] * len(SUMMARY_COUNTS))


def store_counts(conn: sqlite3.Connection) -> None:
    """Store in builds what build_summary counts over functions and types, for the
    builds that lack it (just stored, or stored before): the view then reads them.
    Writes (takes the write lock) only when some build lacks them."""
    rows = conn.execute(
        f"SELECT {', '.join(SUMMARY_COUNTS.values())}, build_id FROM build_summary"
        " WHERE build_id IN (SELECT id FROM builds WHERE n_full_inline IS NULL)"
    ).fetchall()
    if rows:
        with transaction(conn):
            conn.executemany(
                f"UPDATE builds SET ({', '.join(SUMMARY_COUNTS)}) = ({', '.join('?' * len(SUMMARY_COUNTS))})"
                " WHERE id = ?",
                rows,
            )
