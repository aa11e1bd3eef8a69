"""Opening a kernsurf database: for writing (created and migrated as needed)
or read-only (never created, never changed). Neither writes into a database
another program made, nor reads an empty file as a kernsurf one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ingest.db.counts import store_counts
from ingest.db.schema import SCHEMA_VERSION, migrate, schema_sql
from ingest.db.sql import utils
from ingest.errors import NoDatabase


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) a kernsurf database with the schema applied;
    NoDatabase for another program's database (nothing written to it)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        require_kernsurf(conn, path, allow_empty=True)
    except (NoDatabase, sqlite3.Error) as exc:
        conn.close()
        raise (exc if isinstance(exc, NoDatabase) else database_error(path, exc)) from None
    # WAL: readers (Datasette) keep reading the last committed state while a
    # build is written, and are never locked out by the commit. Persistent in the file.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MB: more buys no write speed, only peak memory
    migrate(conn)
    conn.executescript(schema_sql())
    version = utils(conn).table("schema_version")
    if not version.count:
        version.insert({"version": SCHEMA_VERSION})
    store_counts(conn)  # of builds stored before counts were
    return conn


def readonly_uri(path: str | Path) -> str:
    """The read-only URI of `path`, quoted: a `#`, `?` or `%` in it is part of the name."""
    return Path(path).resolve().as_uri() + "?mode=ro"


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing kernsurf database (no schema changes);
    NoDatabase when it is not one (empty, another program's, locked, unreadable).
    The path is quoted in the URI: a `#`, `?` or `%` in it is part of the name
    (unquoted, `#` dropped "?mode=ro" into a fragment and created a file)."""
    uri = readonly_uri(path)
    try:
        conn = sqlite3.connect(uri, uri=True)
        require_kernsurf(conn, path)
    except sqlite3.Error as exc:
        raise database_error(path, exc) from None
    return conn


def require_kernsurf(conn: sqlite3.Connection, path: str | Path, allow_empty: bool = False) -> None:
    """NoDatabase unless the database at `path` is a kernsurf one (or, with
    `allow_empty`, a new one without tables): kernsurf never writes its schema
    into another program's database, nor reads an empty file as one."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    if ("builds" in tables and ("schema_version" in tables or "names" in tables)) or (
        allow_empty and not tables
    ):
        return
    what = "it is empty" if not tables else "it has tables " + ", ".join(tables[:5])
    what += ", ..." if len(tables) > 5 else ""
    raise NoDatabase(
        f"{path}: not a kernsurf database ({what}); give the file `kernsurf build` or `kernsurf ingest` made"
    )


def database_error(path: str | Path, exc: sqlite3.Error) -> NoDatabase:
    """A one-line NoDatabase for an SQLite error opening or reading `path`."""
    text = str(exc)
    if "locked" in text:
        return NoDatabase(
            f"{path}: the database is locked by another process (a kernsurf ingest or build writing it?);"
            " try again when it is done"
        )
    if Path(path).is_dir():
        return NoDatabase(f"{path} is a directory; give the database file (e.g. {Path(path) / 'kernels.db'})")
    if "unable to open" in text:
        return NoDatabase(f"{path}: cannot open the database ({text}); check the path and its permissions")
    return NoDatabase(f"{path}: not a kernsurf database ({text})")
