"""Changing a stored database by hand, as tests do to make a state no image
gives: the interned facts (docs/storage.md) and their build memberships."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def editing(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the database at `path`, committed and closed after the
    block (so a copy of the file made next holds the changes)."""
    conn = sqlite3.connect(path)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def _bit(fact: int) -> int:
    """The membership bit of `fact` in its block, as SQLite's signed 64-bit integer."""
    bit = 1 << (fact & 63)
    return bit - (1 << 64) if bit >> 63 else bit


def give(conn: sqlite3.Connection, family: str, build: int, fact: int) -> None:
    """Record that `build` has fact `fact` of `family` (instance, call, symbol, function)."""
    conn.execute(
        f"INSERT INTO {family}_members (build_id, block, bits) VALUES (?, ?, ?)"
        " ON CONFLICT (build_id, block) DO UPDATE SET bits = bits | excluded.bits",
        (build, fact >> 6, _bit(fact)),
    )


def take(conn: sqlite3.Connection, family: str, build: int, fact: int) -> None:
    """Record that `build` no longer has fact `fact` of `family`."""
    conn.execute(
        f"UPDATE {family}_members SET bits = bits & ~? WHERE build_id = ? AND block = ?",
        (_bit(fact), build, fact >> 6),
    )


def add(conn: sqlite3.Connection, family: str, build: int, **columns: object) -> int:
    """A new fact of `family` with `columns`, given to `build`; its id."""
    names = ", ".join(columns)
    fact = conn.execute(
        f"INSERT INTO {family}_facts ({names}) VALUES ({', '.join('?' * len(columns))})",
        tuple(columns.values()),
    ).lastrowid
    assert fact is not None
    give(conn, family, build, fact)
    return fact


def change(conn: sqlite3.Connection, family: str, build: int, fact: int, **changes: object) -> int:
    """`build`'s fact `fact` of `family` replaced by a copy with `changes` (other builds keep
    the original); the copy's id."""
    cursor = conn.execute(f"SELECT * FROM {family}_facts WHERE id = ?", (fact,))
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
    del row["id"]
    take(conn, family, build, fact)
    return add(conn, family, build, **{**row, **changes})


def build_id(conn: sqlite3.Connection, name: str) -> int:
    return conn.execute("SELECT id FROM builds WHERE name = ?", (name,)).fetchone()[0]


def function_fact(conn: sqlite3.Connection, build: int, name: str) -> int:
    """The function fact of `name` in `build`."""
    return conn.execute(
        "SELECT fact_id FROM functions WHERE build_id = ? AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, name),
    ).fetchone()[0]


def add_kfunc(conn: sqlite3.Connection, build: str, name: str, sets: str, module: str | None) -> None:
    """A kfunc `name` registered in build `build` by set8 `sets`, by `module` (None: vmlinux),
    as ingest stores a module's `.BTF_ids` set8 (tests/test_kfuncs_modules.py)."""
    conn.execute("INSERT OR IGNORE INTO names (name) VALUES (?)", (name,))
    name_id, module_id = (
        conn.execute("SELECT id FROM names WHERE name = ?", (n,)).fetchone()[0] if n else None
        for n in (name, module)
    )
    add(
        conn,
        "kfunc",
        build_id(conn, build),
        name_id=name_id,
        source="btf_id_set8",
        sets=sets,
        flags=0,
        module_name_id=module_id,
    )
