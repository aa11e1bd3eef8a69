"""Merging shards: the builds of another kernsurf database (one built on
another machine) added to this one, each fact still stored once
(docs/storage.md#merging-shards).

Facts are identified by their content, so a merge is a union: every row the
shard's builds refer to is looked up by content here (names by name,
prototypes and layouts by digest, facts by their key columns) and added when
missing, its id mapped; then each build's facts are stored through the same
writer as an ingest (`store_facts`), with its values (addresses, lines) read
from the shard. Ids are local to a database, so nothing is copied by id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.db.counts import store_counts
from ingest.db.facts import store_facts
from ingest.db.families import CALLS, FAMILIES, INSTANCES, Family
from ingest.db.schema import SCHEMA_VERSION
from ingest.db.sql import foreign_keys_unchecked, transaction
from ingest.db.values import choose_value_base, value_sql
from ingest.errors import MergeError

#: Lookup tables matched on their one content column, then the shared rows
#: matched on a digest (their children are copied with them), in the order
#: they are mapped: a table's references are mapped before it.
LOOKUPS = {"names": "name", "paths": "path", "type_texts": "text", "texts": "text"}
DIGESTED = {  # table -> (child table, its column naming the parent)
    "prototypes": (("prototype_params", "prototype_id"),),
    "layouts": (("struct_fields", "layout_id"), ("enum_values", "layout_id")),
}
_SHARD = "kernsurf_shard"


@dataclass(slots=True)
class MergeResult:
    """What merging one shard did."""

    merged: list[str] = field(default_factory=list)  # build names added
    skipped: list[str] = field(default_factory=list)  # already here (same build-id)


def merge(conn: sqlite3.Connection, shard: Path, say: Callable[[str], None] | None = None) -> MergeResult:
    """Add the builds of the kernsurf database `shard` that this one lacks, with
    their groups, in one transaction; `say` hears of each build as it starts.
    Stored diffs are not copied: the groups' pairs are recomputed by
    `diff.compute_group_diffs`."""
    if not shard.is_file():
        raise MergeError(f"{shard}: no such database; give the path of a kernsurf database to merge")
    conn.execute(f"ATTACH DATABASE ? AS {_SHARD}", (str(shard),))  # only read
    try:
        _require_same_schema(conn, shard)
        with foreign_keys_unchecked(conn), transaction(conn):
            result = MergeResult()
            builds = _map_builds(conn, result)
            if result.merged:
                for table, column in LOOKUPS.items():
                    _map_lookup(conn, table, column)
                for table, children in DIGESTED.items():
                    _map_digested(conn, table, children)
                for k, (old, new) in enumerate(builds):
                    if say is not None:
                        say(f"merging {result.merged[k]} ({k + 1} of {len(builds)}) from {shard}")
                    _merge_build(conn, old, new)
                store_counts(conn)
            _merge_groups(conn)
            return result
    finally:
        for table in _mapped_tables(conn):
            conn.execute(f"DROP TABLE temp.{table}")
        conn.execute(f"DETACH DATABASE {_SHARD}")


def _require_same_schema(conn: sqlite3.Connection, shard: Path) -> None:
    try:
        row = conn.execute(f"SELECT max(version) FROM {_SHARD}.schema_version").fetchone()
    except sqlite3.DatabaseError:
        raise MergeError(f"{shard}: not a kernsurf database; give a database kernsurf built") from None
    if row[0] != SCHEMA_VERSION:
        raise MergeError(
            f"{shard}: schema {row[0]}, this kernsurf writes {SCHEMA_VERSION}; upgrade the shard first"
            " (any writing command does: kernsurf index --db SHARD)"
        )


def _map_table(table: str) -> str:
    return f"kernsurf_map_{table}"


def _mapped_tables(conn: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "SELECT name FROM temp.sqlite_master WHERE type = 'table' AND name LIKE 'kernsurf!_map!_%' ESCAPE '!'"
        )
    ]


def _new_map(conn: sqlite3.Connection, table: str) -> str:
    """An empty map (shard id -> id here) for `table`."""
    name = _map_table(table)
    conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
    conn.execute(f"CREATE TEMP TABLE {name} (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")
    return name


def _map_builds(conn: sqlite3.Connection, result: MergeResult) -> list[tuple[int, int]]:
    """Copy the builds row of each shard build this database lacks (matched by
    build-id; a build already here maps to it); (shard id, new id) of the copies."""
    mapping = _new_map(conn, "builds")
    columns = [c for (_, c, *_) in conn.execute("PRAGMA main.table_info(builds)") if c != "id"]
    copied = []
    for old, name, build_id in conn.execute(
        f"SELECT id, name, build_id FROM {_SHARD}.builds ORDER BY id"
    ).fetchall():
        here = conn.execute("SELECT id FROM builds WHERE build_id = ?", (build_id,)).fetchone()
        if here is not None:
            conn.execute(f"INSERT INTO {mapping} VALUES (?, ?)", (old, here[0]))
            result.skipped.append(name)
            continue
        if conn.execute("SELECT 1 FROM builds WHERE name = ?", (name,)).fetchone():
            raise MergeError(
                f"build name {name} is taken here by another build (another build-id); delete one of"
                " them (kernsurf delete) or re-ingest it with another --label, then merge again"
            )
        new = conn.execute(
            f"INSERT INTO builds ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {_SHARD}.builds WHERE id = ?",
            (old,),
        ).lastrowid
        assert new is not None
        conn.execute(f"INSERT INTO {mapping} VALUES (?, ?)", (old, new))
        copied.append((old, new))
        result.merged.append(name)
    return copied


def _map_lookup(conn: sqlite3.Connection, table: str, column: str) -> None:
    """Add the shard's values of lookup `table` missing here (in the shard's
    order) and map every shard id to the id here."""
    conn.execute(
        f"INSERT INTO {table} ({column}) SELECT s.{column} FROM {_SHARD}.{table} s"
        f" WHERE NOT EXISTS (SELECT 1 FROM main.{table} m WHERE m.{column} = s.{column}) ORDER BY s.id"
    )
    conn.execute(
        f"INSERT INTO {_new_map(conn, table)} SELECT s.id, m.id FROM {_SHARD}.{table} s"
        f" JOIN main.{table} m ON m.{column} = s.{column}"
    )


def _map_digested(conn: sqlite3.Connection, table: str, children: tuple[tuple[str, str], ...]) -> None:
    """Add the shard's rows of `table` (prototypes, layouts) whose digest is
    missing here, with their child rows, references mapped; map every shard id."""
    fresh = f"kernsurf_map_fresh_{table}"  # temporary, dropped with the maps
    conn.execute(f"DROP TABLE IF EXISTS temp.{fresh}")
    conn.execute(
        f"CREATE TEMP TABLE {fresh} AS SELECT s.id AS old FROM {_SHARD}.{table} s"
        f" WHERE NOT EXISTS (SELECT 1 FROM main.{table} m WHERE m.digest = s.digest)"
    )
    columns = [c for c in _columns(conn, table) if c != "id"]
    conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {_mapped(conn, table, columns)}"
        f" FROM {_SHARD}.{table} s WHERE s.id IN (SELECT old FROM temp.{fresh}) ORDER BY s.id"
    )
    conn.execute(
        f"INSERT INTO {_new_map(conn, table)} SELECT s.id, m.id FROM {_SHARD}.{table} s"
        f" JOIN main.{table} m ON m.digest = s.digest"
    )
    for child, parent in children:  # after the map: fields refer to other layouts too
        columns = _columns(conn, child)
        conn.execute(
            f"INSERT INTO {child} ({', '.join(columns)}) SELECT {_mapped(conn, child, columns)}"
            f" FROM {_SHARD}.{child} s WHERE s.{parent} IN (SELECT old FROM temp.{fresh})"
        )


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [c for (_, c, *_) in conn.execute(f"PRAGMA main.table_info({table})")]


def _references(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """column -> the table it refers to, from the declared foreign keys."""
    return {row[3]: row[2] for row in conn.execute(f"PRAGMA main.foreign_key_list({table})")}


def _mapped(conn: sqlite3.Connection, table: str, columns: list[str], alias: str = "s") -> str:
    """A select list of `columns` of shard rows `alias` of `table`, each reference mapped to the id here."""
    refers = _references(conn, table)
    return ", ".join(
        f"(SELECT new FROM temp.{_map_table(refers[c])} WHERE old = {alias}.{c})"
        if c in refers and refers[c] != "builds"
        else f"{alias}.{c}"
        for c in columns
    )


def _merge_build(conn: sqlite3.Connection, old: int, new: int) -> None:
    """One shard build's rows: its sources, modules and facts of every family
    (its values as deltas to its line's first build here)."""
    choose_value_base(conn, new)
    for table in ("build_sources", "modules"):
        columns = [c for c in _columns(conn, table) if c not in ("id", "build_id")]
        conn.execute(
            f"INSERT INTO {table} (build_id, {', '.join(columns)})"
            f" SELECT ?, {_mapped(conn, table, columns)} FROM {_SHARD}.{table} s WHERE s.build_id = ?",
            (new, old),
        )
    for family in (INSTANCES, CALLS, *(f for f in FAMILIES if f not in (INSTANCES, CALLS))):
        shard_ids: list[int] = []
        rows = _shard_rows(conn, family, old, shard_ids)
        ids = store_facts(conn, family, new, rows, want_ids=family is INSTANCES)
        if family is INSTANCES:  # the caller edges of this build refer to these
            instances = _new_map(conn, "instance_facts")
            conn.executemany(f"INSERT INTO {instances} VALUES (?, ?)", zip(shard_ids, ids))


def _shard_rows(
    conn: sqlite3.Connection, family: Family, build: int, shard_ids: list[int]
) -> Iterator[tuple]:
    """The rows of shard build `build` of `family` as store_facts takes them
    (key columns mapped, then values), in the shard's fact order; each row's
    shard fact id is appended to `shard_ids`."""
    values = ", ".join(
        f"CASE WHEN x.{family.name}_id IS NULL THEN {value_sql(family, v, 'm.build_id', f'{_SHARD}.')} ELSE x.{v} END"
        for v in family.values
    )
    exceptions = (
        f" LEFT JOIN {_SHARD}.{family.values_table} x ON x.build_id = m.build_id AND x.{family.name}_id = f.id"
        if family.values
        else ""
    )
    cursor = conn.execute(
        f"SELECT f.id, {_mapped(conn, family.facts, list(family.key), 'f')}{', ' + values if values else ''}"
        f" FROM {_SHARD}.{family.members} m JOIN {_SHARD}.{family.facts} f"
        "  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND (m.bits >> (f.id & 63)) & 1"
        f"{exceptions} WHERE m.build_id = ? ORDER BY f.id",
        (build,),
    )
    for fact_id, *row in cursor:
        shard_ids.append(fact_id)
        yield tuple(row)


def _merge_groups(conn: sqlite3.Connection) -> None:
    """The shard's groups: a group missing here is added after the others; one
    here gains the shard's members it lacks, after its own."""
    builds = _map_table("builds")
    for gid, name, kind in conn.execute(
        f"SELECT id, name, kind FROM {_SHARD}.groups ORDER BY position"
    ).fetchall():
        here = conn.execute("SELECT id FROM groups WHERE name = ?", (name,)).fetchone()
        if here is None:
            position = conn.execute("SELECT coalesce(max(position) + 1, 0) FROM groups").fetchone()[0]
            here = (
                conn.execute(
                    "INSERT INTO groups (name, kind, position) VALUES (?, ?, ?)", (name, kind, position)
                ).lastrowid,
            )
        members = conn.execute(
            f"SELECT b.new, s.label FROM {_SHARD}.group_members s JOIN temp.{builds} b ON b.old = s.build_id"
            " WHERE s.group_id = ? AND b.new NOT IN (SELECT build_id FROM group_members WHERE group_id = ?)"
            " ORDER BY s.position",
            (gid, here[0]),
        ).fetchall()
        first = conn.execute(
            "SELECT coalesce(max(position) + 1, 0) FROM group_members WHERE group_id = ?", here
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO group_members (group_id, position, build_id, label) VALUES (?, ?, ?, ?)",
            [(here[0], first + k, build, label) for k, (build, label) in enumerate(members)],
        )
