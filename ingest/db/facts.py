"""Interned facts (docs/storage.md): each distinct instance, caller edge, symbol,
function status, named type, variable, typedef and surface item (trace event,
syscall slot, LSM hook, kfunc, config value) is stored once; a build records which facts it has as runs
of 64-bit membership bitmaps over blocks of fact ids, and its own values (addresses, declaration lines)
as runs of deltas to its value base's (the first build of its line, else the values stored with the facts).

A build's rows are matched to the stored facts by content inside SQLite (a
temporary table joined through the facts' index), so memory does not grow with
the number of builds stored; new facts are numbered in the build's own order,
so a later build of the same line shares whole blocks of ids with it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ingest.db.sql import next_id


@dataclass(frozen=True, slots=True)
class Family:
    """One kind of interned fact; its tables are named after it (docs/storage.md)."""

    name: str  # e.g. instance: instance_facts, instance_members, instance_values, instance_<value>_runs
    key: tuple[str, ...]  # the content columns a fact is matched on
    #: Per-build integer values, stored with the fact as its first build had them; a
    #: build's own are its value base's (value_bases) plus the delta of its run in
    #: <name>_<value>_runs, or, where no delta can say them (NULL on one side), a row
    #: of <name>_values.
    values: tuple[str, ...] = ()

    @property
    def facts(self) -> str:
        return f"{self.name}_facts"

    @property
    def members(self) -> str:
        """(build_id, block, bits): the build has fact block * 64 + k for each bit k set."""
        return f"{self.name}_members"

    @property
    def values_table(self) -> str:
        """(build_id, <name>_id, values...)."""
        return f"{self.name}_values"

    def runs_table(self, value: str) -> str:
        return f"{self.name}_{value}_runs"


INSTANCES = Family(
    name="instance",
    key=(
        "name_id",
        "external",
        "decl_path_id",
        "cu_path_id",
        "inline",
        "defined",
        "module_name_id",
        "occurrence",
    ),
    values=("decl_line", "address"),
)
CALLS = Family(name="call", key=("callee_id", "caller_id", "inline", "sites"))
SYMBOLS = Family(
    name="symbol",
    key=(
        "name_id",
        "stem_id",
        "suffixes",
        "binding",
        "section",
        "ftrace",
        "kprobe_blocked",
        "module_name_id",
        "occurrence",
    ),
    # A function's size changes between series (82 % of 6.12's symbols that 6.1 has
    # differ in size alone): a value, so that the symbol stays one fact.
    values=("size", "address"),
)
FUNCTIONS = Family(
    name="function",
    key=(
        "name_id",
        "collision",
        "inline",
        "suffixes",
        "n_instances",
        "n_symbols",
        "prototype_id",
        "prototype_source",
        "ftrace",
        "kprobe_blocked",
        "btf_func",
        "module_name_id",
    ),
)
TYPES = Family(name="type", key=("name_id", "layout_id", "kind", "module_name_id"))
VARIABLES = Family(
    name="variable",
    key=("name_id", "size", "binding", "section", "per_cpu", "btf_var", "occurrence"),
    values=("address",),
)
TRACEPOINTS = Family(
    name="tracepoint",
    key=(
        "name_id",
        "system",
        "class_id",
        "struct_layout_id",
        "func_id",
        "print_fmt_id",
        "raw_prototype_id",
        "syscall_id",
        "fields_id",
        "module_name_id",
    ),
)
SYSCALLS = Family(
    name="syscall",
    key=("abi", "number", "name_id", "symbol_id", "table_id"),
)
LSM_HOOKS = Family(name="lsm_hook", key=("name_id", "prototype_id", "bpf_lsm"))
KFUNCS = Family(name="kfunc", key=("name_id", "source", "sets", "flags", "module_name_id"))
CONFIG = Family(name="config", key=("name_id", "value"))
TYPEDEFS = Family(
    name="typedef",
    key=("name_id", "target_id", "resolved_id", "kind", "size", "layout_id"),
)
#: In the order their unused facts are collected (caller edges before the instances they join).
FAMILIES = (
    FUNCTIONS,
    SYMBOLS,
    CALLS,
    INSTANCES,
    TYPES,
    VARIABLES,
    TRACEPOINTS,
    SYSCALLS,
    LSM_HOOKS,
    KFUNCS,
    CONFIG,
    TYPEDEFS,
)
#: The surface tables (views now) -> their family, in the order they are stored.
SURFACES = {
    "tracepoints": TRACEPOINTS,
    "syscalls": SYSCALLS,
    "lsm_hooks": LSM_HOOKS,
    "kfuncs": KFUNCS,
    "config_options": CONFIG,
}

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
            _insert_values(conn, family, build)
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


def _insert_values(conn: sqlite3.Connection, family: Family, build: int) -> None:
    """The build's values as runs of equal deltas to its value base's values, in
    fact id order (addresses shift in blocks between builds: 350 000 changed
    instance addresses of a point release are 70 000 runs), and as exception
    rows where one side is NULL. One pass over the rows, none of them kept."""
    pairs = ", ".join(f"f.{c}, n.{c}" for c in family.values)
    base = value_base(conn, build)
    bases = [RunReader(conn, family.runs_table(value), base) for value in family.values]
    runs: list[DeltaRuns] = [DeltaRuns() for _ in family.values]
    exceptions = []
    for fact_id, *values in conn.execute(
        f"SELECT n.fact_id, {pairs} FROM {_NEW} n JOIN {family.facts} f ON f.id = n.fact_id ORDER BY n.fact_id"
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
        _write_runs(conn, family.runs_table(value), build, found.runs)


def _plus(stored: int | None, delta: int) -> int | None:
    return None if stored is None else stored + delta


def _write_runs(conn: sqlite3.Connection, table: str, build: int, found: Iterable[Run]) -> None:
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


# --------------------------------------------------------------------------- value bases


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


def _rebase_dependents(conn: sqlite3.Connection, build: int) -> None:
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
            gone, kept = _read_runs(conn, table, build), _read_runs(conn, table, heir)
            conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (heir,))
            _write_runs(conn, table, heir, sum_runs([(1, gone), (1, kept)]))
            for other in others:  # own + gone - (gone + kept): the gone base's deltas cancel
                own = _read_runs(conn, table, other)
                conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (other,))
                _write_runs(conn, table, other, sum_runs([(1, own), (-1, kept)]))
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
                own = _read_runs(conn, table, build)
                conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (build,))
                _write_runs(conn, table, build, sum_runs([(1, own), (-1, _read_runs(conn, table, base))]))
    return based


def _read_runs(conn: sqlite3.Connection, table: str, build: int) -> list[Run]:
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


BLOCK = 64  # fact ids per membership row


def clear_members(conn: sqlite3.Connection, build: int) -> None:
    """Forget which facts `build` has, and its values (the facts stay: collect_unused_facts);
    the builds whose value base it was are rebased first."""
    _rebase_dependents(conn, build)
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
