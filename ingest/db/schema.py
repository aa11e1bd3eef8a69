"""The schema: schema.sql (the source of truth) and the migrations that bring
a database made by an older kernsurf up to it, in one place."""

from __future__ import annotations

import re
import sqlite3

from ingest.db.counts import SUMMARY_COUNTS
from ingest.db.sql import utils
from ingest.resources import shipped

SCHEMA_VERSION = 8  # 3: syscall events, variables, member type references, check reason facts;
# 4: variables in build_summary and name_kinds; 5: modules; 6: modules' kfuncs, types and events move;
# 7: kfuncs move; 8: typedefs


def schema_sql() -> str:
    """The text of schema.sql (a wheel's copy, else the checkout's: ingest.resources)."""
    return shipped("schema.sql").read_text()


ADDED_COLUMNS = (  # (table, column, declaration) added after the first release of the schema
    ("prototypes", "canon_return_id", "INTEGER REFERENCES type_texts(id)"),
    ("prototype_params", "canon_id", "INTEGER REFERENCES type_texts(id)"),
    ("struct_fields", "canon_id", "INTEGER REFERENCES type_texts(id)"),
    ("struct_fields", "type_kind", "TEXT"),
    ("struct_fields", "type_layout_id", "INTEGER REFERENCES layouts(id)"),
    ("symbols", "ftrace", "INTEGER"),
    ("symbols", "kprobe_blocked", "TEXT"),
    ("functions", "ftrace", "INTEGER"),
    ("functions", "kprobe_blocked", "TEXT"),
    ("functions", "btf_func", "INTEGER"),
    *(
        ("builds", c, "INTEGER")
        for c in ("n_tracepoints", "n_syscalls", "n_lsm_hooks", "n_kfuncs", "n_config", "n_variables")
    ),
    ("tracepoints", "syscall_id", "INTEGER REFERENCES names(id)"),
    ("tracepoints", "fields_id", "INTEGER REFERENCES texts(id)"),
    ("builds", "n_modules", "INTEGER"),
    ("builds", "n_typedefs", "INTEGER"),
    *(("builds", c, "INTEGER") for c in SUMMARY_COUNTS),
    *(
        (table, "module_id", "INTEGER REFERENCES modules(id)")
        for table in ("instances", "symbols", "functions", "types", "tracepoints", "kfuncs")
    ),
)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database made by an older schema up to date: add the (nullable)
    new columns, whose old rows keep NULL ("not recorded"), and drop the views
    schema.sql defines, which it then recreates with their new columns (a
    view holds no data; views a user added stay)."""
    database = utils(conn)
    tables = set(database.table_names())
    if "schema_version" not in tables:
        return  # a new database
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 1
    missing = [(t, c, d) for t, c, d in ADDED_COLUMNS if t in tables and c not in database[t].columns_dict]
    if version >= SCHEMA_VERSION and not missing:  # columns added within a version migrate too
        return
    for table, column, declaration in missing:
        # Raw ALTER: sqlite-utils' add_column cannot declare the REFERENCES clause.
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    schema = schema_sql()
    for view in re.findall(r"CREATE VIEW IF NOT EXISTS (\w+)", schema):
        conn.execute(f"DROP VIEW IF EXISTS {view}")
    if _stored_sql(conn, "changes") != _declared_sql(schema, "changes"):
        # New item kinds widen the changes CHECK constraint, which SQLite cannot
        # alter: drop the stored diffs (group pairs are recomputed by the next
        # `kernsurf build`) and the vocabulary, which schema.sql then re-creates.
        conn.execute("DROP TABLE IF EXISTS changes")
        conn.execute("DELETE FROM diff_pairs")
        conn.execute("DELETE FROM change_kinds")
    if version < 7:  # the moves came to cover types and trace events (6), kfuncs (7)
        conn.execute(
            "UPDATE change_kinds SET items = 'function struct union enum tracepoint kfunc'"
            " WHERE name IN ('moved into module', 'moved into vmlinux')"
        )
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))


def _stored_sql(conn: sqlite3.Connection, table: str) -> str | None:
    """The CREATE TABLE text of `table` as the database holds it, whitespace folded."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return " ".join(re.sub(r"--[^\n]*", "", row[0]).split()) if row else None


def _declared_sql(schema: str, table: str) -> str:
    """The CREATE TABLE text of `table` in schema.sql as SQLite stores it
    (without IF NOT EXISTS, comments dropped, whitespace folded)."""
    found = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \((.*?\n)\);", schema, re.S)
    if found is None:
        raise ValueError(f"schema.sql declares no table {table}")
    body = re.sub(r"--[^\n]*", "", found.group(1))
    return " ".join(f"CREATE TABLE {table} ({body})".split())
