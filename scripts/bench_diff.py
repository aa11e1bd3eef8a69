#!/usr/bin/env python3
"""Diff benchmark: time to diff two full builds and the space the stored
changes take. Usage: bench_diff.py DB [BUILD_A BUILD_B]

With two builds (names, ids or build-id prefixes), that pair; without, every
pair the database's groups define (or, with no groups, consecutive builds in
version order). Works on a temporary copy: DB itself is never written.

Targets: a diff of two full amd64 builds (~75 000 function names,
~10 000 structs) in at most 5 s; stored changes at most 5 % of the database."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import db
from ingest.changes import diff
from ingest.queries import builds as builds_q
from ingest.queries import changes as changes_q

DIFF_OBJECTS = (
    "change_sets",
    "change_sets_block",
    "change_details",
    "change_details_name",
    "diff_pairs",
    "diff_pairs_build_b",
    "sqlite_autoindex_diff_pairs_1",
)
TARGET_SECONDS, TARGET_SHARE = 5.0, 0.05


def pairs(conn, args: list[str]) -> list[tuple[int, int]]:
    if len(args) == 2:
        return [(diff.resolve_build(conn, args[0]), diff.resolve_build(conn, args[1]))]
    found = [(p.build_a, p.build_b) for p in changes_q.group_pairs(conn)]
    if not found:
        ids = [b.id for b in builds_q.list_builds(conn)]
        found = list(zip(ids, ids[1:]))
    if not found:
        sys.exit("the database holds fewer than two builds")
    return found


def bytes_of(conn, names: tuple[str, ...]) -> int:
    """Bytes the named tables and indexes occupy (dbstat), or 0 without dbstat."""
    marks = ",".join("?" * len(names))
    try:
        return conn.execute(
            f"SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ({marks})", names
        ).fetchone()[0]
    except Exception:
        return 0


def main() -> None:
    if len(sys.argv) not in (2, 4):
        sys.exit(__doc__.split("\n\n")[0])
    source = Path(sys.argv[1])
    if not source.exists():
        sys.exit(f"{source}: no such database")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bench.db"
        shutil.copy(source, copy)
        conn = db.connect(copy)
        try:
            db.delete_diff_pairs(conn, [p.id for p in changes_q.stored_pairs(conn).values()])
            conn.execute("VACUUM")
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            base = conn.execute("PRAGMA page_count").fetchone()[0] * page
            names = {b.id: b.name for b in builds_q.list_builds(conn)}
            worst = 0.0
            for a, b in pairs(conn, sys.argv[2:]):
                facts = [
                    conn.execute("SELECT count(*) FROM functions WHERE build_id = ?", (x,)).fetchone()[0]
                    for x in (a, b)
                ]
                structs = [
                    conn.execute(
                        "SELECT count(*) FROM types WHERE build_id = ? AND kind != 'enum'", (x,)
                    ).fetchone()[0]
                    for x in (a, b)
                ]
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    changes = diff.diff_builds(conn, a, b)
                    times.append(time.perf_counter() - start)
                start = time.perf_counter()
                diff.store_pair(conn, a, b, changes)
                stored = time.perf_counter() - start
                worst = max(worst, min(times))
                per_item = Counter(c.item_kind for c in changes)
                print(
                    f"{names[a]} -> {names[b]}: {facts[0]} / {facts[1]} function names, "
                    f"{structs[0]} / {structs[1]} structs+unions"
                )
                print(
                    f"  diff: {', '.join(f'{t:.2f}' for t in times)} s (3 runs); store: {stored:.2f} s; "
                    f"{len(changes)} changes ("
                    + ", ".join(f"{n} {k}" for k, n in sorted(per_item.items()))
                    + ")"
                )
            used = bytes_of(conn, DIFF_OBJECTS)
            if not used:  # no dbstat: measure the file
                conn.execute("VACUUM")
                used = conn.execute("PRAGMA page_count").fetchone()[0] * page - base
            total = base + used
            print(
                f"stored changes: {used / 1e6:.2f} MB of {total / 1e6:.1f} MB = {used / total:.1%} of the database "
                f"(target <= {TARGET_SHARE:.0%}: {'met' if used / total <= TARGET_SHARE else 'NOT met'})"
            )
            print(
                f"slowest diff (best of 3): {worst:.2f} s (target <= {TARGET_SECONDS:.0f} s: "
                f"{'met' if worst <= TARGET_SECONDS else 'NOT met'})"
            )
        finally:
            conn.close()


if __name__ == "__main__":
    main()
