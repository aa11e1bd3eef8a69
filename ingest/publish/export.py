"""A standalone smaller database: the builds a user selects (by name, group,
arch, or release from a version on) with everything they use, and the same
schema, views and pages. Made on a compact copy of the source (which is only
read), from which the other builds are deleted (ingest.db.delete)."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ingest import db
from ingest.changes.diff import resolve_build
from ingest.errors import DatabaseExists, NothingToExport, UnknownGroup
from ingest.publish.artefact import vacuum_into
from ingest.queries import builds as q


@dataclass(frozen=True, slots=True)
class Selection:
    """Which builds to keep: those that every given criterion admits (a list
    admits what any of its entries names); no criterion at all admits none."""

    builds: tuple[str, ...] = ()  # names, ids or build-id prefixes
    groups: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    since: str | None = None  # a release: this one and later (by version order)

    def given(self) -> bool:
        return bool(self.builds or self.groups or self.arches or self.since)


@dataclass(slots=True)
class Exported:
    """What an export wrote."""

    path: Path
    kept: list[str]  # build names
    removed: dict[str, int] = field(default_factory=dict)  # shared rows not carried over, per table


def export(source: Path, out: Path, selection: Selection) -> Exported:
    """Write the selected builds of `source` into the new database `out`."""
    if out.exists():
        raise DatabaseExists(f"{out}: exists; give a new file name (or delete it first)")
    if not selection.given():
        raise NothingToExport("name what to export: --build, --group, --arch or --since")
    db.open_readonly(source).close()  # a kernsurf database, or a one-line error
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    vacuum_into(source, tmp)
    try:
        conn = db.connect(tmp)
        try:
            places = q.build_places(conn)
            kept = _selected(conn, places, selection)
            removed = db.delete_builds(conn, [p.id for p in places if p.id not in kept])
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("VACUUM")
        finally:
            conn.close()
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(out, [p.name for p in places if p.id in kept], removed)


def _selected(conn: sqlite3.Connection, places: list[q.BuildPlace], selection: Selection) -> set[int]:
    chosen = {p.id for p in places}
    if selection.builds:
        chosen &= {resolve_build(conn, ref) for ref in selection.builds}
    if selection.groups:
        stored = {g.name: g for g in q.load_groups(conn)}
        missing = [g for g in selection.groups if g not in stored]
        if missing:
            names = ", ".join(stored) or "none stored"
            raise UnknownGroup(f"no group {missing[0]!r} (groups: {names})")
        chosen &= {m.build for g in selection.groups for m in stored[g].members}
    if selection.arches:
        chosen &= {p.id for p in places if p.arch in selection.arches}
    if selection.since:
        floor = db.version_sort(selection.since) or ""
        chosen &= {p.id for p in places if (p.version_sort or "") >= floor}
    if not chosen:
        raise NothingToExport("no build matches the selection (kernsurf diff's build names, /builds)")
    return chosen
