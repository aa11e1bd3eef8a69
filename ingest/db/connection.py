"""Opening a kernsurf database: for writing (created and migrated as needed)
or read-only (never created, never changed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ingest.db.counts import store_counts
from ingest.db.schema import SCHEMA_VERSION, migrate, schema_sql
from ingest.db.sql import utils


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) a kernsurf database with the schema applied."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    # WAL: readers (Datasette) keep reading the last committed state while a
    # build is written, and are never locked out by the commit. Persistent in the file.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -262144")  # 256 MB: index inserts of a build stay in memory
    migrate(conn)
    conn.executescript(schema_sql())
    version = utils(conn).table("schema_version")
    if not version.count:
        version.insert({"version": SCHEMA_VERSION})
    store_counts(conn)  # of builds stored before counts were
    return conn


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing database (no schema changes)."""
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
