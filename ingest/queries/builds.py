"""Builds, groups and the stored difference pairs, as the CLI, `kernsurf build`
and the diff step read them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from ingest import groups


class BuildRef(NamedTuple):
    """A stored build: its id and display name."""

    id: int
    name: str


class BuildListing(NamedTuple):
    """One row of `list_builds`."""

    id: int
    name: str
    build_id: str | bytes  # some older databases hold the ELF build-id as a blob
    arch: str | None


class BuildFacts(NamedTuple):
    """What a diff needs to know of a build."""

    id: int
    name: str
    has_dwarf: bool
    has_symtab: bool
    stamp: str  # changes whenever the build is re-ingested
    surfaces: bool  # attachability and the other surfaces were recorded
    has_config: bool


class GroupMember(NamedTuple):
    build: int
    label: str


class StoredGroup(NamedTuple):
    """A stored group, members in position order (position 0: a variants group's baseline)."""

    name: str
    kind: str  # "series" or "variants"
    members: list[GroupMember]


class GroupPair(NamedTuple):
    """A pair of builds a group compares: A before (or the baseline of) B."""

    group_id: int
    build_a: int
    build_b: int


class StoredPair(NamedTuple):
    """A stored pair of diff_pairs."""

    id: int
    group_id: int | None  # None: ad hoc (`kernsurf diff --store`)
    stamp: str
    n_changes: int


class ChangeKind(NamedTuple):
    """One entry of the change vocabulary (the change_kinds table)."""

    name: str
    items: str


def find_build(conn: sqlite3.Connection, build_id: str) -> BuildRef | None:
    """The build with this ELF build-id, if stored."""
    row = conn.execute("SELECT id, name FROM builds WHERE build_id = ?", (build_id,)).fetchone()
    return BuildRef._make(row) if row else None


def build_named(conn: sqlite3.Connection, name: str) -> int | None:
    """Id of the build with this display name, if stored."""
    row = conn.execute("SELECT id FROM builds WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def build_name(conn: sqlite3.Connection, build: int) -> str | None:
    """Display name of the build with this id, if stored."""
    row = conn.execute("SELECT name FROM builds WHERE id = ?", (build,)).fetchone()
    return row[0] if row else None


def find_release(
    conn: sqlite3.Connection, distro: str, release: str, arch: str, version: str | None = None
) -> BuildRef | None:
    """A stored build of this distro kernel release and arch (and package version, if
    given), without reading the image: what `kernsurf build` checks before fetching."""
    sql = "SELECT id, name FROM builds WHERE distro = ? AND release = ? AND arch = ?"
    args: tuple[str, ...] = (distro, release, arch)
    if version is not None:
        sql, args = sql + " AND version = ?", (*args, version)
    row = conn.execute(sql + " ORDER BY id LIMIT 1", args).fetchone()
    return BuildRef._make(row) if row else None


def list_builds(conn: sqlite3.Connection) -> list[BuildListing]:
    """Every stored build, oldest version first."""
    rows = conn.execute("SELECT id, name, build_id, arch FROM builds ORDER BY version_sort, name")
    return list(map(BuildListing._make, rows))


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The schema version the database was made or last upgraded by."""
    return conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]


def build_records(conn: sqlite3.Connection, columns: Sequence[str]) -> list[dict[str, object]]:
    """Every build as {column: value} over those of `columns` the builds table has, in id order
    (a publication's manifest lists them whatever the schema's age)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(builds)")}
    chosen = [c for c in columns if c in have]
    rows = conn.execute(f"SELECT {', '.join(chosen)} FROM builds ORDER BY id")
    return [dict(zip(chosen, row)) for row in rows]


def build_facts(conn: sqlite3.Connection, build: int) -> BuildFacts | None:
    """What a diff needs to know of a build (None when not stored)."""
    row = conn.execute(
        "SELECT name, has_dwarf, has_symtab, sha256, ingested_at, n_tracepoints, n_config"
        " FROM builds WHERE id = ?",
        (build,),
    ).fetchone()
    if row is None:
        return None
    name, has_dwarf, has_symtab, sha256, ingested_at, n_tracepoints, n_config = row
    return BuildFacts(
        id=build,
        name=name,
        has_dwarf=bool(has_dwarf),
        has_symtab=bool(has_symtab),
        stamp=f"{build}:{sha256}:{ingested_at}",
        surfaces=n_tracepoints is not None,
        has_config=bool(n_config),
    )


def load_groups(conn: sqlite3.Connection) -> list[StoredGroup]:
    """The stored groups in display order, members in position order."""
    out: list[StoredGroup] = []
    for gid, name, kind in conn.execute("SELECT id, name, kind FROM groups ORDER BY position, id").fetchall():
        members = conn.execute(
            "SELECT build_id, label FROM group_members WHERE group_id = ? ORDER BY position", (gid,)
        )
        out.append(StoredGroup(name, kind, list(map(GroupMember._make, members))))
    return out


def group_pairs(conn: sqlite3.Connection) -> list[GroupPair]:
    """Every pair the groups define (ingest.groups.pairs: consecutive members of a
    series, the baseline against each other member of variants). Groups in display
    order; a pair defined twice, or a build compared with itself, is listed once or not at all."""
    out: list[GroupPair] = []
    seen: set[tuple[int, int]] = set()
    for gid, kind in conn.execute("SELECT id, kind FROM groups ORDER BY position, id").fetchall():
        members = [
            b
            for (b,) in conn.execute(
                "SELECT build_id FROM group_members WHERE group_id = ? ORDER BY position", (gid,)
            )
        ]
        for a, b in groups.pairs(kind, members):
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                out.append(GroupPair(gid, a, b))
    return out


def stored_pairs(conn: sqlite3.Connection) -> dict[tuple[int, int], StoredPair]:
    """{(build A, build B): the stored pair} of the stored differences."""
    return {
        (a, b): StoredPair(pair, group, stamp, n)
        for pair, a, b, group, stamp, n in conn.execute(
            "SELECT id, build_a, build_b, group_id, stamp, n_changes FROM diff_pairs"
        )
    }


def change_kinds(conn: sqlite3.Connection) -> list[ChangeKind]:
    """The change vocabulary in display order (schema.sql)."""
    return list(map(ChangeKind._make, conn.execute("SELECT name, items FROM change_kinds ORDER BY position")))


class BuildPlace(NamedTuple):
    """Where a build sits among the others: what an export selects builds by."""

    id: int
    name: str
    arch: str | None
    release: str | None
    version_sort: str | None  # the release, numbers zero-padded (db.version_sort)


def build_places(conn: sqlite3.Connection) -> list[BuildPlace]:
    rows = conn.execute("SELECT id, name, arch, release, version_sort FROM builds ORDER BY id")
    return list(map(BuildPlace._make, rows))
