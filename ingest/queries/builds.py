"""Builds and the groups they form: which builds are stored, what each records,
its counts (the builds summary), and the groups with their members."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from ingest.queries._sql import has_column

# --------------------------------------------------------------------------- builds


class BuildRef(NamedTuple):
    """A stored build: its id and display name."""

    id: int
    name: str


class BuildRow(NamedTuple):
    """A stored build: what it is and what it records."""

    id: int
    name: str
    build_id: str | bytes  # the ELF build-id (some older databases hold it as a blob)
    has_dwarf: bool
    has_btf: bool
    has_symtab: bool
    lacks: str | None
    release: str | None
    version: str | None
    arch: str | None
    flavor: str | None
    modules_read: bool = False  # builds.n_modules is not NULL


def _build_rows(conn: sqlite3.Connection, order: str) -> list[BuildRow]:
    """Every build, in `order` (an ORDER BY clause of this module)."""
    n_modules = "n_modules" if has_column(conn, "builds", "n_modules") else "NULL"
    return [
        BuildRow(
            id=r[0],
            name=r[1],
            build_id=r[2],
            has_dwarf=bool(r[3]),
            has_btf=bool(r[4]),
            has_symtab=bool(r[5]),
            lacks=r[6],
            release=r[7],
            version=r[8],
            arch=r[9],
            flavor=r[10],
            modules_read=r[11] is not None,
        )
        for r in conn.execute(
            "SELECT id, name, build_id, has_dwarf, has_btf, has_symtab, lacks, release, version, arch, flavor,"
            f" {n_modules} FROM builds {order}"
        )
    ]


def builds(conn: sqlite3.Connection) -> list[BuildRow]:
    """Every build, in version order, builds without a version last (the pages' order)."""
    return _build_rows(conn, "ORDER BY version_sort IS NULL, version_sort, name, id")


def list_builds(conn: sqlite3.Connection) -> list[BuildRow]:
    """Every build, oldest version first (builds without a version first: the CLI's order)."""
    return _build_rows(conn, "ORDER BY version_sort, name")


def build_refs(conn: sqlite3.Connection) -> list[BuildRef]:
    """Every build's id and name, in list_builds' order."""
    return list(map(BuildRef._make, conn.execute("SELECT id, name FROM builds ORDER BY version_sort, name")))


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


class BuildFacts(NamedTuple):
    """What a build records, which decides what a diff compares and whether a
    check can give a verdict."""

    id: int
    name: str
    has_dwarf: bool
    has_btf: bool
    has_symtab: bool
    stamp: str  # changes whenever the build is re-ingested
    surfaces: bool  # attachability and the other surfaces were recorded (n_tracepoints set)
    has_config: bool
    arch: str | None
    ftrace_recorded: bool  # symbols carry ftrace facts (False: a BTF blob with kallsyms)
    events_recorded: bool  # trace events were read (False: a BTF blob: raw tracepoints only)
    modules_read: bool  # the build's loadable modules were read (builds.n_modules set)
    # Every module of the build was read (False: the running system's loaded ones only).
    modules_complete: bool
    blacklist_recorded: bool  # False: ftrace facts without the kprobe blacklist (build_sources)
    syscalls_recorded: bool  # False: no syscall table was read (a BTF-only input; build_sources)


def build_facts(conn: sqlite3.Connection, build: int) -> BuildFacts | None:
    """What build `build` records (None when not stored)."""
    n_modules = "n_modules" if has_column(conn, "builds", "n_modules") else "NULL"
    row = conn.execute(
        "SELECT name, has_dwarf, has_btf, has_symtab, sha256, ingested_at, n_tracepoints, n_config, arch,"
        f" {n_modules} IS NOT NULL,"
        " EXISTS (SELECT 1 FROM symbols WHERE build_id = b.id AND ftrace IS NOT NULL),"
        " EXISTS (SELECT 1 FROM tracepoints WHERE build_id = b.id AND system IS NOT NULL)"
        " FROM builds b WHERE id = ?",
        (build,),
    ).fetchone()
    if row is None:
        return None
    name, has_dwarf, has_btf, has_symtab, sha256, ingested_at, n_tracepoints, n_config, arch, *rest = row
    modules_read, ftrace, events = rest
    sources = _sources(conn, build)
    return BuildFacts(
        id=build,
        name=name,
        has_dwarf=bool(has_dwarf),
        has_btf=bool(has_btf),
        has_symtab=bool(has_symtab),
        stamp=f"{build}:{sha256}:{ingested_at}",
        surfaces=n_tracepoints is not None,
        has_config=bool(n_config),
        arch=arch,
        ftrace_recorded=bool(ftrace),
        events_recorded=bool(events),
        modules_read=bool(modules_read),
        modules_complete=not (sources.get("modules") or "").startswith("loaded"),
        blacklist_recorded=sources.get("kprobe_blacklist", "") is not None,
        syscalls_recorded=sources.get("syscalls", "") is not None,
    )


def _sources(conn: sqlite3.Connection, build: int) -> dict[str, str | None]:
    """The build's fact sources (ingest.origins.facts); empty for a database or build without them."""
    try:
        return dict(conn.execute("SELECT fact, source FROM build_sources WHERE build_id = ?", (build,)))
    except sqlite3.OperationalError:  # a database made before build_sources, opened read-only
        return {}


def config_values(conn: sqlite3.Connection, build: int, options: Sequence[str]) -> dict[str, str]:
    """The values of config `options` in `build` (those it has)."""
    rows = conn.execute(
        # CROSS JOIN: the few names asked for first, then their rows by primary key
        "SELECT n.name, c.value FROM names n CROSS JOIN config_options c"
        " WHERE n.name IN (SELECT value FROM json_each(?)) AND c.name_id = n.id AND c.build_id = ?",
        (json.dumps(list(options)), build),
    )
    return dict(rows.fetchall())


def records_variables(conn: sqlite3.Connection, build: int) -> bool:
    """Whether `build` recorded its kernel variables (builds.n_variables set)."""
    if not has_column(conn, "builds", "n_variables"):
        return False
    row = conn.execute("SELECT n_variables FROM builds WHERE id = ?", (build,)).fetchone()
    return row is not None and row[0] is not None


def modules_read(conn: sqlite3.Connection, build: int) -> bool:
    """Whether the build's modules were read (builds.n_modules is not NULL)."""
    row = conn.execute("SELECT n_modules IS NOT NULL FROM builds WHERE id = ?", (build,)).fetchone()
    return bool(row and row[0])


class BuildSummary(NamedTuple):
    """A row of the build_summary view (schema.sql)."""

    build_id: int
    functions: int
    full_inline: int
    selective_inline: int
    declared_only: int
    transformed: int
    collisions: int
    duplicates: int
    structs: int
    unions: int
    enums: int
    symbols: int | None
    kprobe_ok: int | None  # None: attachability not recorded
    fentry_ok: int | None
    notrace: int | None
    surfaces_recorded: bool
    trace_events: int
    raw_tracepoints: int
    syscalls: int
    compat_syscalls: int
    lsm_hooks: int
    kfuncs: int
    config_options: int
    variables: int | None  # None: variables not recorded
    modules: int | None  # None: modules not read
    module_functions: int | None


def build_summaries(conn: sqlite3.Connection) -> dict[int, BuildSummary]:
    """build id -> its counts (the view the builds_summary canned query reads too)."""
    out = {}
    for r in conn.execute(f"SELECT {', '.join(BuildSummary._fields)} FROM build_summary"):
        s = BuildSummary(*r)
        out[s.build_id] = s._replace(surfaces_recorded=bool(s.surfaces_recorded))
    return out


class SurfacesRecorded(NamedTuple):
    """What a build records, for telling absent from not recorded."""

    surfaces: bool  # trace events, syscalls, LSM hooks, kfuncs
    variables: bool
    config: bool


def surfaces_recorded(conn: sqlite3.Connection) -> dict[int, SurfacesRecorded]:
    """build id -> what it records."""
    return {
        r[0]: SurfacesRecorded(surfaces=bool(r[1]), variables=bool(r[2]), config=bool(r[3]))
        for r in conn.execute(
            "SELECT id, n_tracepoints IS NOT NULL, n_variables IS NOT NULL, coalesce(n_config, 0) > 0 FROM builds"
        )
    }


# --------------------------------------------------------------------------- groups


class StoredMember(NamedTuple):
    """A member of a StoredGroup: the build and its label in the group."""

    build: int
    label: str


class StoredGroup(NamedTuple):
    """A stored group, members in position order (position 0: a variants group's baseline)."""

    name: str
    kind: str  # "series" or "variants"
    members: list[StoredMember]


def load_groups(conn: sqlite3.Connection) -> list[StoredGroup]:
    """The stored groups in display order, members in position order."""
    out: list[StoredGroup] = []
    for gid, name, kind in conn.execute("SELECT id, name, kind FROM groups ORDER BY position, id").fetchall():
        members = conn.execute(
            "SELECT build_id, label FROM group_members WHERE group_id = ? ORDER BY position", (gid,)
        )
        out.append(StoredGroup(name, kind, list(map(StoredMember._make, members))))
    return out


class GroupMember(NamedTuple):
    """A member of a group, with its group and its build."""

    group_id: int
    group: str
    kind: str  # series or variants
    build_id: int
    build: str  # the build's name
    label: str  # the build's label in the group


def group_members(conn: sqlite3.Connection) -> list[GroupMember]:
    """Every member of every group, groups in display order, members in group order."""
    rows = conn.execute(
        "SELECT g.id, g.name, g.kind, m.build_id, b.name, m.label FROM groups g"
        " JOIN group_members m ON m.group_id = g.id JOIN builds b ON b.id = m.build_id"
        " ORDER BY g.position, g.id, m.position"
    )
    return list(map(GroupMember._make, rows))


def group_names(conn: sqlite3.Connection) -> list[str]:
    """Names of the groups, in order."""
    return [r[0] for r in conn.execute("SELECT name FROM groups ORDER BY position, id")]


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
