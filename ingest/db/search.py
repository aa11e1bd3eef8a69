"""Writing the name search index (the FTS5 table name_search)."""

from __future__ import annotations

import sqlite3

from ingest.db.sql import transaction


def build_search_index(conn: sqlite3.Connection) -> int:
    """Refill the name_search index (schema.sql) with every function, type, typedef,
    tracepoint, syscall, LSM hook, kfunc, kernel variable, config option and module name, in one
    transaction; returns how many names it holds."""
    with transaction(conn):
        conn.execute("INSERT INTO name_search (name_search) VALUES ('delete-all')")
        cursor = conn.execute(
            "INSERT INTO name_search (rowid, name) SELECT id, name FROM names WHERE id IN"
            " (SELECT name_id FROM functions UNION SELECT name_id FROM types"
            " UNION SELECT name_id FROM tracepoints UNION SELECT name_id FROM syscalls"
            " UNION SELECT name_id FROM lsm_hooks UNION SELECT name_id FROM kfuncs"
            " UNION SELECT name_id FROM config_options UNION SELECT name_id FROM variables"
            " UNION SELECT name_id FROM modules UNION SELECT name_id FROM typedefs)"
        )
        names = cursor.rowcount
        conn.execute("INSERT INTO name_search (name_search) VALUES ('optimize')")
    return names
