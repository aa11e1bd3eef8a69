"""Interned facts (docs/storage.md): each distinct instance, caller edge, symbol,
function status, named type, variable, typedef and surface item (trace event,
syscall slot, LSM hook, kfunc, config value) is stored once; a build records which facts it has as runs
of 64-bit membership bitmaps over blocks of fact ids. Its own values (addresses, declaration lines,
sizes) are kept by ingest.db.values; the kinds of facts are defined in ingest.db.families.

A build's rows are matched to the stored facts by content inside SQLite (a
temporary table joined through the facts' index), so memory does not grow with
the number of builds stored; new facts are numbered in the build's own order,
so a later build of the same line shares whole blocks of ids with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence

from ingest.db.families import FAMILIES, Family
from ingest.db.sql import next_id
from ingest.db.values import insert_values, rebase_dependents

_NEW = "kernsurf_new_facts"


def numbered(rows: Iterable[tuple[tuple, tuple]]) -> Iterator[tuple]:
    """key + (occurrence,) + values for each (key, values) of one build: the
    k-th row with the same key has occurrence k (its facts stay distinct)."""
    seen: dict[tuple, int] = {}
    for key, values in rows:
        occurrence = seen[key] = seen.get(key, -1) + 1
        yield key + (occurrence,) + values


def store_facts(
    conn: sqlite3.Connection, family: Family, build: int, rows: Iterable[Sequence], want_ids: bool = False
) -> list[int]:
    """Record that `build` has the facts `rows` (key columns, then value columns,
    in the family's order); with `want_ids`, returns each row's fact id, in the
    rows' order. Rows with the same key must differ in an occurrence column."""
    columns = family.key + family.values
    conn.execute(f"DROP TABLE IF EXISTS temp.{_NEW}")
    conn.execute(f"CREATE TEMP TABLE {_NEW} (ord INTEGER PRIMARY KEY, {', '.join(columns)}, fact_id INTEGER)")
    try:
        conn.executemany(
            f"INSERT INTO {_NEW} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
        )
        if conn.execute(f"SELECT 1 FROM {family.facts} LIMIT 1").fetchone() is not None:
            match = " AND ".join(f"f.{c} IS {_NEW}.{c}" for c in family.key)
            conn.execute(f"UPDATE {_NEW} SET fact_id = (SELECT f.id FROM {family.facts} f WHERE {match})")
        _insert_new(conn, family, columns)
        if family.values:
            insert_values(conn, family, build, _NEW)
        conn.execute(
            # the sum of distinct powers of two is their OR; it cannot overflow (bit 63 is negative)
            f"INSERT INTO {family.members} (build_id, block, bits)"
            f" SELECT ?, fact_id >> 6, sum(1 << (fact_id & 63)) FROM {_NEW} GROUP BY fact_id >> 6",
            (build,),
        )
        return [i for (i,) in conn.execute(f"SELECT fact_id FROM {_NEW} ORDER BY ord")] if want_ids else []
    finally:
        conn.execute(f"DROP TABLE IF EXISTS temp.{_NEW}")


def _insert_new(conn: sqlite3.Connection, family: Family, columns: tuple[str, ...]) -> None:
    """Number the rows no stored fact matched (in the build's order) and store them as facts."""
    first = next_id(conn, family.facts)
    conn.execute(
        f"UPDATE {_NEW} SET fact_id = n.k + ? FROM"
        f" (SELECT ord, row_number() OVER (ORDER BY ord) - 1 AS k FROM {_NEW} WHERE fact_id IS NULL) n"
        f" WHERE {_NEW}.ord = n.ord",
        (first,),
    )
    conn.execute(
        f"INSERT INTO {family.facts} (id, {', '.join(columns)})"
        f" SELECT fact_id, {', '.join(columns)} FROM {_NEW} WHERE fact_id >= ? ORDER BY fact_id",
        (first,),
    )


BLOCK = 64  # fact ids per membership row


def clear_members(conn: sqlite3.Connection, build: int) -> None:
    """Forget which facts `build` has, and its values (the facts stay: collect_unused_facts);
    the builds whose value base it was are rebased first."""
    rebase_dependents(conn, build)
    conn.execute("DELETE FROM value_bases WHERE build_id = ?", (build,))
    for family in FAMILIES:
        conn.execute(f"DELETE FROM {family.members} WHERE build_id = ?", (build,))
        if family.values:
            conn.execute(f"DELETE FROM {family.values_table} WHERE build_id = ?", (build,))
        for value in family.values:
            conn.execute(f"DELETE FROM {family.runs_table(value)} WHERE build_id = ?", (build,))


def collect_unused_facts(conn: sqlite3.Connection) -> dict[str, int]:
    """Delete the facts no build has any more; how many, per facts table.
    Call edges go before instances: a build that has an edge has both ends."""
    removed = {}
    for family in FAMILIES:
        used: dict[int, int] = {}
        for block, bits in conn.execute(f"SELECT block, bits FROM {family.members}"):
            used[block] = used.get(block, 0) | (bits & ALL)
        top = next_id(conn, family.facts)
        unused = (
            i
            for block in range(top // BLOCK + 1)
            if used.get(block, 0) != ALL
            for i in range(block * BLOCK, min((block + 1) * BLOCK, top))
            if not used.get(block, 0) >> (i & 63) & 1
        )
        removed[family.facts] = sum(
            conn.execute(f"DELETE FROM {family.facts} WHERE id BETWEEN ? AND ?", run).rowcount
            for run in runs(unused)
        )
    return removed


ALL = (1 << 64) - 1  # every bit of a block


def runs(ids: Iterable[int]) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive ids, in order; `ids` sorted."""
    iterator = iter(ids)
    first = last = next(iterator, None)
    if first is None or last is None:
        return
    for i in iterator:
        if i != last + 1:
            yield first, last
            first = i
        last = i
    yield first, last
