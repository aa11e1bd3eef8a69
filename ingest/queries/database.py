"""What a database holds: its tables, and whether it has the columns later
schemas added (a database made before them reads as not recording those facts)."""

from __future__ import annotations

import sqlite3

from ingest.queries._sql import has_column


def nonempty_sql(table: str) -> str:
    """SQL answering whether `table` (a name from metadata.yml, not user input) has a row."""
    return f"SELECT EXISTS (SELECT 1 FROM [{table}])"


def tables(conn: sqlite3.Connection) -> set[str]:
    """Names of the database's tables and views."""
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def records_attachability(conn: sqlite3.Connection) -> bool:
    """Whether the functions table has the attachability columns (schema 2)."""
    return has_column(conn, "functions", "ftrace")


def records_modules(conn: sqlite3.Connection) -> bool:
    """Whether the database has the modules table and module_id columns (schema 5)."""
    return has_column(conn, "functions", "module_id")


def records_kfunc_modules(conn: sqlite3.Connection) -> bool:
    """Whether the kfuncs table has module_id (added within schema 5)."""
    return has_column(conn, "kfuncs", "module_id")


def records_surfaces(conn: sqlite3.Connection) -> bool:
    """Whether the builds table has the columns `kernsurf check` needs (n_tracepoints)."""
    return has_column(conn, "builds", "n_tracepoints")


def member_refs_recorded(conn: sqlite3.Connection) -> bool:
    """Whether struct_fields has the member type references (schema 3)."""
    return has_column(conn, "struct_fields", "type_kind")
