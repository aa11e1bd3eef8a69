"""The schema: schema.sql (the source of truth) and the migrations that bring
a database made by an older kernsurf up to it, in one place."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

from ingest.db.counts import SUMMARY_COUNTS
from ingest.db.facts import numbered, store_facts
from ingest.db.families import (
    CALLS,
    FUNCTIONS,
    INSTANCES,
    SURFACES,
    SYMBOLS,
    TYPEDEFS,
    TYPES,
    VARIABLES,
    Family,
)
from ingest.db.sql import foreign_keys_unchecked, transaction, utils
from ingest.db.values import assign_value_bases
from ingest.resources import shipped

SCHEMA_VERSION = 11  # 3: syscall events, variables, member type references, check reason facts;
# 4: variables in build_summary and name_kinds; 5: modules; 6: modules' kfuncs, types and events move;
# 7: kfuncs move; 8: typedefs; 9: interned instances, callers, symbols, functions;
# 10: compact stored changes; 11: value bases (a build's values relative to its line's first build),
# a symbol's size a per-build value


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
    views = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    for view in re.findall(r"CREATE VIEW IF NOT EXISTS (\w+)", schema):
        if view in views:  # instances, callers, symbols, functions were tables before 9
            conn.execute(f"DROP VIEW {view}")
    if "changes" in tables:  # a table before schema 10, a view since
        # Schema 10 stores changes in change_sets and change_details behind a view of the
        # table's name, and names change kinds by position: drop the stored diffs (group
        # pairs are recomputed by the next `kernsurf build`) and the vocabulary, which
        # schema.sql then re-creates. Item kinds are rows since: a new one needs no migration.
        conn.execute("DROP TABLE changes")
        conn.execute("DELETE FROM diff_pairs")
        conn.execute("DROP TABLE change_kinds")
    if version < 9:
        _intern_code_facts(conn)
    elif version < 11:
        _symbol_sizes_as_values(conn)
    if version < 11:  # each line's builds as deltas to its first (docs/storage.md#value-bases)
        with foreign_keys_unchecked(conn), transaction(conn):
            assign_value_bases(conn)
    if version < 7:  # the moves came to cover types and trace events (6), kfuncs (7)
        conn.execute(
            "UPDATE change_kinds SET items = 'function struct union enum tracepoint kfunc'"
            " WHERE name IN ('moved into module', 'moved into vmlinux')"
        )
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))


#: Schema 9 made these per-build tables views over interned facts (ingest.db.facts).
INTERNED_TABLES: tuple[str, ...] = ("callers", "functions", "symbols", "instances", "types", "variables")
INTERNED_TABLES += ("typedefs", *SURFACES)


def _intern_code_facts(conn: sqlite3.Connection) -> None:
    """Schema 9: store the rows of the per-build tables instances, callers,
    symbols, functions, types and variables as interned facts, build by build,
    then drop the tables (schema.sql has views of their names). One transaction."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'instances'").fetchone():
        return
    with foreign_keys_unchecked(conn), transaction(conn):
        for table in INTERNED_TABLES:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (build_id INTEGER)"
            )  # variables: since schema 3
            conn.execute(f"ALTER TABLE {table} RENAME TO old_{table}")
        for statement in _statements(schema_sql()):
            conn.execute(statement)
        for (build,) in conn.execute("SELECT id FROM builds ORDER BY id").fetchall():
            _intern_build(conn, build)
        for table in INTERNED_TABLES:  # callers first: it refers to instances
            conn.execute(f"DROP TABLE old_{table}")


def _intern_build(conn: sqlite3.Connection, build: int) -> None:
    """One build's rows of the old tables as facts, in the order they were stored."""
    old_ids = [
        i for (i,) in conn.execute("SELECT id FROM old_instances WHERE build_id = ? ORDER BY id", (build,))
    ]
    fact = dict(zip(old_ids, _intern_rows(conn, "instances", INSTANCES, build, order="ORDER BY id")))
    calls = conn.execute(
        "SELECT c.callee_id, c.caller_id, c.kind, c.sites FROM old_instances i"
        " JOIN old_callers c ON c.callee_id = i.id WHERE i.build_id = ?",
        (build,),
    )
    store_facts(
        conn, CALLS, build, [(fact[a], fact[b], kind == "inline", sites) for a, b, kind, sites in calls]
    )
    _intern_rows(conn, "symbols", SYMBOLS, build, order="ORDER BY id")
    families = {
        "functions": FUNCTIONS,
        "types": TYPES,
        "variables": VARIABLES,
        "typedefs": TYPEDEFS,
        **SURFACES,
    }
    for table, family in families.items():
        _intern_rows(conn, table, family, build)


def _intern_rows(
    conn: sqlite3.Connection, table: str, family: Family, build: int, order: str = ""
) -> list[int]:
    """The rows of old table `table` of `build` as facts of `family` (the same columns, a
    module named instead of numbered, occurrences counted); their fact ids, in `order`.
    Nothing when the schema had no such table yet."""
    columns = {c[1] for c in conn.execute(f"PRAGMA table_info(old_{table})")}
    if "name_id" not in columns:
        return []
    key = [c for c in family.key if c != "occurrence"]
    select = ", ".join(
        "(SELECT m.name_id FROM modules m WHERE m.id = t.module_id)" if c == "module_name_id" else c
        for c in key + list(family.values)
    )
    rows = conn.execute(f"SELECT {select} FROM old_{table} t WHERE build_id = ? {order}", (build,)).fetchall()
    if "occurrence" in family.key:
        rows = list(numbered((r[: len(key)], r[len(key) :]) for r in rows))
    return store_facts(conn, family, build, rows, want_ids=True)


#: The symbol tables of schemas 9 and 10, where a symbol's size was part of its identity.
_OLD_SYMBOL_TABLES = ("symbol_facts", "symbol_members", "symbol_address_runs", "symbol_values")


def _symbol_sizes_as_values(conn: sqlite3.Connection) -> None:
    """Schema 11: a symbol's size is a per-build value, no longer part of what
    identifies it; each build's symbols are stored again, build by build, from
    the old tables (read as schema 10 read them: no value bases), then those go.
    Symbol fact ids change (no table refers to them). One transaction."""
    with foreign_keys_unchecked(conn), transaction(conn):
        for table in _OLD_SYMBOL_TABLES:
            conn.execute(f"ALTER TABLE {table} RENAME TO old_{table}")
        for index in ("symbol_facts_stem", "symbol_members_block"):  # an index keeps its name
            conn.execute(f"DROP INDEX IF EXISTS {index}")
        for statement in _statements(schema_sql()):
            conn.execute(statement)
        key = [c for c in SYMBOLS.key if c != "occurrence"]
        address = (
            "CASE WHEN v.symbol_id IS NULL THEN f.address + coalesce((SELECT r.delta FROM old_symbol_address_runs r"
            " WHERE r.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)"
            " ELSE v.address END"
        )
        for (build,) in conn.execute("SELECT id FROM builds ORDER BY id").fetchall():
            rows = conn.execute(
                f"SELECT {', '.join('f.' + c for c in key)}, f.size, {address}"
                " FROM old_symbol_members m JOIN old_symbol_facts f"
                "  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND (m.bits >> (f.id & 63)) & 1"
                " LEFT JOIN old_symbol_values v ON v.build_id = m.build_id AND v.symbol_id = f.id"
                " WHERE m.build_id = ? ORDER BY f.id",
                (build,),
            )
            store_facts(conn, SYMBOLS, build, numbered((r[: len(key)], r[len(key) :]) for r in rows))
        for table in reversed(_OLD_SYMBOL_TABLES):
            conn.execute(f"DROP TABLE old_{table}")


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one at a time (executescript would commit)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
