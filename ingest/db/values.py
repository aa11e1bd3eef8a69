"""Per-build values of interned facts (docs/storage.md): an instance's
declaration line and address, a symbol's size and address, a variable's
address. A fact stores its first build's; another build stores runs of deltas
to its value base's values (the first stored build of its line: value_bases),
or to the fact's where it has none, and exception rows where no delta can say
a value (NULL on one side). Runs are piecewise-constant functions of the fact
id, so rebasing a line is arithmetic on runs (docs/storage.md#value-bases)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from ingest.db.families import FAMILIES, Family


def insert_values(conn: sqlite3.Connection, family: Family, build: int, rows: str) -> None:
    """The build's values as runs of equal deltas to its value base's values, in
    fact id order (addresses shift in blocks between builds: 350 000 changed
    instance addresses of a point release are 70 000 runs), and as exception
    rows where one side is NULL. `rows`: the temporary table of the build's rows
    (their fact_id and values; ingest.db.facts). One pass over them, none kept."""
    pairs = ", ".join(f"f.{c}, n.{c}" for c in family.values)
    base = value_base(conn, build)
    bases = [RunReader(conn, family.runs_table(value), base) for value in family.values]
    runs: list[DeltaRuns] = [DeltaRuns() for _ in family.values]
    exceptions = []
    for fact_id, *values in conn.execute(
        f"SELECT n.fact_id, {pairs} FROM {rows} n JOIN {family.facts} f ON f.id = n.fact_id ORDER BY n.fact_id"
    ):
        said = [
            runs[k].add(fact_id, _plus(values[2 * k], bases[k].at(fact_id)), values[2 * k + 1])
            for k in range(len(runs))
        ]
        if not all(said):
            exceptions.append((build, fact_id, *values[1::2]))
    conn.executemany(
        f"INSERT INTO {family.values_table} (build_id, {family.name}_id, {', '.join(family.values)})"
        f" VALUES ({', '.join('?' * (2 + len(family.values)))})",
        exceptions,
    )
    for value, found in zip(family.values, runs):
        write_runs(conn, family.runs_table(value), build, found.runs)


def _plus(stored: int | None, delta: int) -> int | None:
    return None if stored is None else stored + delta


def write_runs(conn: sqlite3.Connection, table: str, build: int, found: Iterable[Run]) -> None:
    conn.executemany(
        f"INSERT INTO {table} (build_id, first_id, delta) VALUES (?, ?, ?)",
        ((build, run.first_id, run.delta) for run in found),
    )


class Run(NamedTuple):
    """From fact `first_id` on (up to the next run), a build's values are the reference plus `delta`."""

    first_id: int
    delta: int


class DeltaRuns:
    """(first fact id, delta) where the delta of a build's value to the reference
    one changes, fed in fact id order; the delta before the first run is 0."""

    __slots__ = ("runs", "current")

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self.current = 0

    def add(self, fact_id: int, reference: int | None, own: int | None) -> bool:
        """Whether a delta says `own` from `reference` (both NULL, or both set and
        the sum within SQLite's 64 bits); when it does not, the run goes on unchanged."""
        if reference is None or own is None:
            return reference is own
        delta = own - reference
        if abs(delta) >= 1 << 62:
            return False
        if delta != self.current:
            self.runs.append(Run(fact_id, delta))
            self.current = delta
        return True


class RunReader:
    """A build's delta at ascending fact ids, read from its runs in one pass
    (no build: 0 everywhere)."""

    __slots__ = ("_runs", "_next", "delta")

    def __init__(self, conn: sqlite3.Connection, table: str, build: int | None) -> None:
        self._runs: Iterator[tuple[int, int]] = iter(
            conn.execute(
                f"SELECT first_id, delta FROM {table} WHERE build_id = ? ORDER BY first_id", (build,)
            )
            if build is not None
            else ()
        )
        self._next = next(self._runs, None)
        self.delta = 0

    def at(self, fact_id: int) -> int:
        """The delta at `fact_id`, not below the last id asked."""
        while self._next is not None and self._next[0] <= fact_id:
            self.delta = self._next[1]
            self._next = next(self._runs, None)
        return self.delta


def value_sql(family: Family, value: str, build: str, schema: str = "") -> str:
    """SQL for the value `value` of fact `f` in build `build` (an SQL expression),
    as the views compute it where no exception row holds it: the fact's, plus the
    delta of the build's base's run, plus the build's own. `schema`: e.g. "shard."."""
    runs = f"{schema}{family.runs_table(value)}"
    at = "r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1"
    return (
        f"f.{value} + coalesce((SELECT r.delta FROM {runs} r WHERE r.build_id = {build} AND {at}), 0)"
        f" + coalesce((SELECT r.delta FROM {schema}value_bases vb JOIN {runs} r ON r.build_id = vb.base_id"
        f" WHERE vb.build_id = {build} AND {at}), 0)"
    )


def value_base(conn: sqlite3.Connection, build: int) -> int | None:
    """The build whose values `build`'s runs are deltas to (None: the facts' own)."""
    row = conn.execute("SELECT base_id FROM value_bases WHERE build_id = ?", (build,)).fetchone()
    return None if row is None else row[0]


def choose_value_base(conn: sqlite3.Connection, build: int, older: bool = False) -> int | None:
    """Make the first stored build of `build`'s line (same kernel series, arch and
    flavor; docs/storage.md#value-bases) its value base, so a point release pays
    deltas to its line's values, not to those of whichever older line first stored
    a fact; returns it. A base has no base itself, so a value is at most two runs away.
    With `older`, only builds stored before it (a lower id) are candidates."""
    own = conn.execute("SELECT release, arch, flavor FROM builds WHERE id = ?", (build,)).fetchone()
    series = kernel_series(own[0]) if own else None
    if series is None:
        return None
    stored = " OR ".join(
        f"EXISTS (SELECT 1 FROM {f.members} WHERE build_id = b.id)" for f in FAMILIES if f.values
    )  # a build whose row is there but not yet its facts (merging, replacing) cannot be a base
    for candidate, release in conn.execute(
        "SELECT id, release FROM builds b WHERE arch IS ? AND flavor IS ? AND id != ? AND id < ?"
        f" AND id NOT IN (SELECT build_id FROM value_bases) AND ({stored}) ORDER BY id",
        (own[1], own[2], build, build if older else 1 << 62),
    ).fetchall():
        if kernel_series(release) == series:
            conn.execute("INSERT INTO value_bases (build_id, base_id) VALUES (?, ?)", (build, candidate))
            return candidate
    return None


_SERIES = re.compile(r"(\d+)\.(\d+)")


def kernel_series(release: str | None) -> str | None:
    """6.12 of 6.12.113+deb13-amd64, 6.1 of 6.1.0-56-amd64; None without a version."""
    found = _SERIES.match(release or "")
    return f"{found[1]}.{found[2]}" if found else None


def rebase_dependents(conn: sqlite3.Connection, build: int) -> None:
    """Before `build`'s runs go: the builds whose value base it is take the first of
    them as their base, and that one none, their runs rewritten so that every value
    stays (runs are sums of piecewise-constant deltas, so this is run arithmetic)."""
    dependents = [
        b
        for (b,) in conn.execute(
            "SELECT build_id FROM value_bases WHERE base_id = ? ORDER BY build_id", (build,)
        )
    ]
    if not dependents:
        return
    heir, *others = dependents
    for family in FAMILIES:
        for value in family.values:
            table = family.runs_table(value)
            gone, kept = read_runs(conn, table, build), read_runs(conn, table, heir)
            conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (heir,))
            write_runs(conn, table, heir, sum_runs([(1, gone), (1, kept)]))
            for other in others:  # own + gone - (gone + kept): the gone base's deltas cancel
                own = read_runs(conn, table, other)
                conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (other,))
                write_runs(conn, table, other, sum_runs([(1, own), (-1, kept)]))
    conn.execute("DELETE FROM value_bases WHERE build_id = ?", (heir,))
    conn.execute("UPDATE value_bases SET base_id = ? WHERE base_id = ?", (heir, build))


def assign_value_bases(conn: sqlite3.Connection) -> int:
    """Give each stored build without one the value base an ingest would have
    given it (builds in id order: a line's first has none), its runs rewritten
    to deltas to the base's values (its own minus the base's, at every fact id);
    for databases written before value bases. How many builds got a base."""
    based = 0
    for (build,) in conn.execute(
        "SELECT id FROM builds WHERE id NOT IN (SELECT build_id FROM value_bases) ORDER BY id"
    ).fetchall():
        if conn.execute("SELECT 1 FROM value_bases WHERE base_id = ?", (build,)).fetchone():
            continue  # a base already: it keeps none
        base = choose_value_base(conn, build, older=True)
        if base is None:
            continue
        based += 1
        for family in FAMILIES:
            for value in family.values:
                table = family.runs_table(value)
                own = read_runs(conn, table, build)
                conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (build,))
                write_runs(conn, table, build, sum_runs([(1, own), (-1, read_runs(conn, table, base))]))
    return based


def read_runs(conn: sqlite3.Connection, table: str, build: int) -> list[Run]:
    return [
        Run(*row)
        for row in conn.execute(
            f"SELECT first_id, delta FROM {table} WHERE build_id = ? ORDER BY first_id", (build,)
        )
    ]


def sum_runs(terms: Sequence[tuple[int, Sequence[Run]]]) -> list[Run]:
    """The runs of sign * delta summed over `terms` (each sign ±1), at every fact id;
    a run whose delta equals the one before is merged into it."""
    starts = sorted({run.first_id for _, found in terms for run in found})
    readers = [(sign, iter(found)) for sign, found in terms]
    heads: list[Run | None] = [next(it, None) for _, it in readers]
    deltas = [0] * len(terms)
    out: list[Run] = []
    current = 0
    for first in starts:
        for k, (_, it) in enumerate(readers):
            head = heads[k]
            if head is not None and head.first_id == first:
                deltas[k] = head.delta
                heads[k] = next(it, None)
        total = sum(sign * delta for (sign, _), delta in zip(terms, deltas))
        if total != current:
            out.append(Run(first, total))
            current = total
    return out
