#!/usr/bin/env python3
"""Compare two kernsurf databases table by table, row for row.

    .venv/bin/python scripts/compare_databases.py BEFORE.db AFTER.db

Every table of BEFORE (but SQLite's and the search index's own) must hold
exactly the rows of the same table in AFTER, as multisets; the columns that
record when and how long an ingest ran (builds.ingest_seconds, ingested_at)
are left out. Prints one line per table and exits 1 on any difference: the
check of a restructuring that must not change a stored row.
"""

from __future__ import annotations

import sqlite3
import sys

#: Columns that differ between two ingests of the same input by nature.
VOLATILE = {"builds": {"ingest_seconds", "ingested_at"}}


def tables(conn: sqlite3.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT LIKE 'name_search%' ORDER BY name"
    )
    return [name for (name,) in rows]


def columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    info = conn.execute(f'PRAGMA {schema}.table_info("{table}")').fetchall()
    return [row[1] for row in info if row[1] not in VOLATILE.get(table, set())]


def differing(conn: sqlite3.Connection, table: str, cols: list[str]) -> tuple[int, int]:
    """(rows only in BEFORE, rows only in AFTER), counted as multisets."""
    select = ", ".join(f'"{c}"' for c in cols)
    counted = f'SELECT {select}, count(*) AS n FROM {{}}."{table}" GROUP BY {select}'
    only = f"SELECT count(*) FROM ({counted.format('{0}')} EXCEPT {counted.format('{1}')})"  # noqa: S608
    return (
        conn.execute(only.format("main", "b")).fetchone()[0],
        conn.execute(only.format("b", "main")).fetchone()[0],
    )


def main(before: str, after: str) -> int:
    conn = sqlite3.connect(f"file:{before}?mode=ro", uri=True)
    conn.execute("ATTACH ? AS b", (f"file:{after}?mode=ro",))
    failed = 0
    names_a, names_b = tables(conn, "main"), tables(conn, "b")
    for table in sorted(set(names_a) | set(names_b)):
        if table not in names_a or table not in names_b:
            print(f"{table}: only in {'BEFORE' if table in names_a else 'AFTER'}")
            failed += 1
            continue
        cols_a, cols_b = columns(conn, "main", table), columns(conn, "b", table)
        if cols_a != cols_b:
            print(f"{table}: columns differ ({cols_a} vs {cols_b})")
            failed += 1
            continue
        rows = conn.execute(f'SELECT count(*) FROM main."{table}"').fetchone()[0]
        only_a, only_b = differing(conn, table, cols_a)
        status = (
            "identical" if only_a == only_b == 0 else f"DIFFER: {only_a} only before, {only_b} only after"
        )
        failed += status != "identical"
        print(f"{table}: {rows} rows, {status}")
    print("all tables identical" if not failed else f"{failed} tables differ")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
