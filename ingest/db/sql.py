"""What every writer shares: the write transaction, sqlite-utils over a
connection, the in-memory lookup caches of names and texts, ids and addresses.

Raw sqlite3 stays on purpose where speed or SQLite specifics matter: the bulk
inserts (executemany over prepared rows, ids assigned here so parents precede
children), the lookup caches, and the BEGIN IMMEDIATE of `transaction()`
(sqlite-utils' atomic() begins deferred, which can deadlock two writers).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count

import sqlite_utils


def utils(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over an open connection (no PRAGMA changes, no plugins)."""
    return sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)


_savepoints = count()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any
    exception. Inside an open transaction it nests as a SAVEPOINT (the
    sqlite-utils pattern), so a caller can group several writes into one."""
    if conn.in_transaction:
        name = f"kernsurf_{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
            conn.execute(f"RELEASE {name}")
        except BaseException:
            if conn.in_transaction:  # an error may already have ended the transaction
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        return
    # IMMEDIATE: take the write lock now, so two writers wait instead of deadlocking.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def version_sort(text: str | None) -> str | None:
    """A string that sorts like the version: numbers zero-padded to 6 digits."""
    if not text:
        return None
    return re.sub(r"\d+", lambda m: m.group(0).zfill(6), text)


class Lookup:
    """A lookup table (id, value) as one write uses it: the values it asked for,
    found in the table (one query for a batch, `add()`) or numbered after its
    last id and inserted at `flush()`. `ids` maps None to None, so rows can index
    it directly once `add()` has numbered their values. Only the values a build
    uses are held, not the table: memory does not grow with the builds stored."""

    def __init__(self, conn: sqlite3.Connection, table: str, column: str):
        self.conn, self.table, self.column = conn, table, column
        self.ids: dict[str | None, int | None] = {None: None}
        self.next_id = next_id(conn, table)
        self.new: list[tuple[int, str]] = []

    def __call__(self, value: str | None) -> int | None:
        i = self.ids.get(value, 0)
        if i == 0:
            found = self.conn.execute(
                f"SELECT id FROM {self.table} WHERE {self.column} = ?", (value,)
            ).fetchone()
            i = self.ids[value] = found[0] if found else self._number(value)  # type: ignore[arg-type]
        return i

    def add(self, values: Iterable[str | None]) -> dict[str | None, int | None]:
        """Number every value not numbered yet (stored ones keep their id, new
        ones follow in first-seen order); the id map."""
        ids = self.ids
        unknown = [value for value in dict.fromkeys(values) if value not in ids]
        ids.update(self._stored(unknown))
        for value in unknown:
            if value not in ids:
                ids[value] = self._number(value)  # type: ignore[arg-type]
        return ids

    def _stored(self, values: list[str | None]) -> Iterator[tuple[str | None, int]]:
        """(value, id) of the `values` the table holds, keyed by the caller's own strings."""
        conn = self.conn
        conn.execute("CREATE TEMP TABLE kernsurf_lookup (k INTEGER PRIMARY KEY, value TEXT)")
        try:
            conn.executemany("INSERT INTO temp.kernsurf_lookup (value) VALUES (?)", ((v,) for v in values))
            found = conn.execute(
                f"SELECT t.k, m.id FROM temp.kernsurf_lookup t JOIN main.{self.table} m ON m.{self.column} = t.value"
            ).fetchall()
        finally:
            conn.execute("DROP TABLE temp.kernsurf_lookup")
        return ((values[k - 1], i) for k, i in found)

    def _number(self, value: str) -> int:
        i = self.next_id
        self.next_id += 1
        self.new.append((i, value))
        return i

    def flush(self) -> None:
        if self.new:
            self.conn.executemany(f"INSERT INTO {self.table} (id, {self.column}) VALUES (?, ?)", self.new)
            self.new = []


def addr(address: int | None) -> int | None:
    """Addresses are stored as signed 64-bit integers (SQLite's INTEGER);
    printf('%x', address) prints them back as the unsigned address."""
    if address is None or address < 1 << 63:
        return address
    return address - (1 << 64)


def next_id(conn: sqlite3.Connection, table: str) -> int:
    return (conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0) + 1


@dataclass(slots=True)
class Lookups:
    """The lookup tables a build's rows refer to, cached for one write."""

    names: Lookup
    paths: Lookup
    texts: Lookup  # type_texts: C type texts and declarations
    long_texts: Lookup  # texts: print formats and field lists

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> Lookups:
        return cls(
            names=Lookup(conn, "names", "name"),
            paths=Lookup(conn, "paths", "path"),
            texts=Lookup(conn, "type_texts", "text"),
            long_texts=Lookup(conn, "texts", "text"),
        )

    def flush(self) -> None:
        """Insert the values numbered since the last flush (before the rows that use them)."""
        for lookup in (self.names, self.paths, self.texts, self.long_texts):
            lookup.flush()


class ContentStore:
    """A table of shared contents (prototypes, layouts) keyed by a digest, as
    one write uses it: each digest the build has is looked up once (its UNIQUE
    index), new rows are numbered after the table's last id. Only the build's
    own digests are held, not the table's (472 000 prototypes, 52 MiB, after
    two lines of kernels with their modules; growing with every line)."""

    def __init__(self, conn: sqlite3.Connection, texts: Lookup, table: str):
        self.conn, self.texts, self.table = conn, texts, table
        self.ids: dict[int | str, int] = {}  # digest -> id, for the digests this write has met
        self.next_id = next_id(conn, table)
        self.rows: list[tuple] = []

    def known(self, digest: int | str) -> int | None:
        """The id of the row with `digest`, stored before or numbered by this write; None if new."""
        i = self.ids.get(digest)
        if i is None:
            found = self.conn.execute(f"SELECT id FROM {self.table} WHERE digest = ?", (digest,)).fetchone()
            if found is not None:
                i = self.ids[digest] = found[0]
        return i


@contextmanager
def foreign_keys_unchecked(conn: sqlite3.Connection) -> Iterator[None]:
    """Foreign keys not checked row by row, for the writes that keep them
    themselves: `store_build` numbers every row it inserts, parents before
    children, and the checks would cost a third of its time (millions of rows
    with modules); deleting unused shared rows would look each one up in every
    referring column, most without an index (a scan per row). The tests run
    PRAGMA foreign_key_check after both. (SQLite ignores the PRAGMA inside a
    transaction: then the checks stay on.)"""
    was = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if was else 'OFF'}")
