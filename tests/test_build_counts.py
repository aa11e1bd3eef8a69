"""build_summary's counts over functions and types, stored in builds at ingest
(db.store_counts) instead of counted on every read: the view shows what it
counted before, for builds stored before the counts (counted when read, then
filled by the next db.connect), after a --replace and after the migration that
adds the columns. Fixture: the fixture program as vmlinux with the module-like
fixtures of tests/test_modules_readers.py, beside the program without modules."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from ingest import db, pipeline
from tests.support.modules import build_modules
from tests.support.programs import compile_program
from tests.support.site import Site

#: The view's function and type counts as it counted them before they were stored:
#: the oracle the stored counts must equal.
COUNTED = """
SELECT b.id, coalesce(f.functions, 0), coalesce(f.full_inline, 0), coalesce(f.selective_inline, 0),
       coalesce(f.declared_only, 0), coalesce(f.transformed, 0), coalesce(f.collisions, 0),
       coalesce(f.duplicates, 0), coalesce(t.structs, 0), coalesce(t.unions, 0), coalesce(t.enums, 0),
       f.kprobe_ok, f.fentry_ok, f.notrace,
       CASE WHEN b.n_modules IS NOT NULL THEN coalesce(f.module_functions, 0) END
FROM builds b
LEFT JOIN (SELECT build_id, count(*) AS functions, sum(inline = 'Full') AS full_inline,
                  sum(inline = 'Selective') AS selective_inline, sum(inline = 'Declared only') AS declared_only,
                  sum(suffixes IS NOT NULL) AS transformed,
                  sum(collision IN ('Static-Static Collision', 'Static-Global Collision')) AS collisions,
                  sum(collision = 'Static Duplication') AS duplicates,
                  sum(ftrace IS NOT NULL AND kprobe_blocked IS NULL) AS kprobe_ok,
                  sum(ftrace = 1 AND btf_func = 1) AS fentry_ok, sum(ftrace = 0) AS notrace,
                  sum(module_id IS NOT NULL) AS module_functions
           FROM functions GROUP BY build_id) f ON f.build_id = b.id
LEFT JOIN (SELECT build_id, sum(kind = 'struct') AS structs, sum(kind = 'union') AS unions,
                  sum(kind = 'enum') AS enums
           FROM types GROUP BY build_id) t ON t.build_id = b.id
ORDER BY b.id
"""
#: The same columns of the view.
SHOWN = (
    "SELECT build_id, functions, full_inline, selective_inline, declared_only, transformed, collisions,"
    " duplicates, structs, unions, enums, kprobe_ok, fentry_ok, notrace, module_functions"
    " FROM build_summary ORDER BY build_id"
)
NOT_STORED = (
    f"UPDATE builds SET ({', '.join(db.SUMMARY_COUNTS)}) = ({', '.join(['NULL'] * len(db.SUMMARY_COUNTS))})"
)


@pytest.fixture(scope="module")
def counts_db(tmp_path_factory) -> Path:
    """kernels.db: build "mods" (the program with modules a/alpha.ko, b/beta.ko) and
    "plain" (the DWARF 4 program, modules not read)."""
    tmp = tmp_path_factory.mktemp("counts")
    (tmp / "kos").mkdir()
    kos = build_modules("amd64", tmp / "kos")
    tree = tmp / "kernel"
    for sub, name in (("a", "alpha"), ("b", "beta")):
        (tree / sub).mkdir(parents=True)
        shutil.copy(kos[name], tree / sub / f"{name}.ko")
    path = tmp / "db" / "kernels.db"
    path.parent.mkdir()
    pipeline.ingest(
        compile_program(tmp, "dwarf5"), path, pipeline.Identity(label="mods"), jobs=1, modules=tree
    )
    pipeline.ingest(compile_program(tmp, "dwarf4"), path, pipeline.Identity(label="plain"), jobs=1)
    return path


def copy(source: Path, dest_dir: Path, sql: str = "") -> Path:
    """A copy of `source` (named kernels.db, as served) changed by `sql`."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / "kernels.db"
    shutil.copy(source, dest)
    conn = sqlite3.connect(dest)
    conn.executescript(sql)
    conn.close()
    return dest


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_counts_are_stored_at_ingest_and_equal_what_the_view_counted(counts_db):
    stored = rows(counts_db, f"SELECT {', '.join(db.SUMMARY_COUNTS)} FROM builds ORDER BY id")
    assert len(stored) == 2 and all(r[0] is not None for r in stored)
    shown = rows(counts_db, SHOWN)
    assert shown == rows(counts_db, COUNTED)
    mods, plain = shown
    # module functions: counted where modules were read, None ("not read") elsewhere
    assert mods[-1] > 0 and plain[-1] is None
    assert mods[1] > 0 and mods[8] > 0  # Full inline functions, structs: the counts are not all zero


def test_builds_stored_before_are_counted_then_stored_by_connect(counts_db, tmp_path):
    path = copy(counts_db, tmp_path, NOT_STORED + ";")
    assert rows(path, SHOWN) == rows(counts_db, SHOWN)  # counted when read
    db.connect(path).close()
    assert rows(path, "SELECT count(*) FROM builds WHERE n_full_inline IS NULL") == [(0,)]
    assert rows(path, "SELECT * FROM build_summary") == rows(counts_db, "SELECT * FROM build_summary")


def test_pages_read_the_same_from_stored_and_counted(counts_db, tmp_path):
    counted = copy(counts_db, tmp_path / "counted", NOT_STORED + ";")
    for path in ("/builds", "/"):
        pages = []
        for source in (counts_db, counted):
            site = Site(source)
            try:
                response = site.get(path)
            finally:
                site.close()
            assert response.status_code == 200
            pages.append(response.text)
        assert pages[0] == pages[1], path


def test_replace_recounts(counts_db, tmp_path):
    path = copy(counts_db, tmp_path, "UPDATE builds SET n_full_inline = 999, n_struct_types = 999;")
    program = Path(rows(path, "SELECT source_path FROM builds WHERE name = 'plain'")[0][0])
    pipeline.ingest(program, path, pipeline.Identity(label="plain"), replace=True, jobs=1)
    assert rows(path, SHOWN)[1] == rows(counts_db, SHOWN)[1]
    assert rows(path, "SELECT n_full_inline FROM builds WHERE name = 'plain'") != [(999,)]


def test_migration_adds_the_count_columns_within_the_schema_version(counts_db, tmp_path):
    """A database of this schema version made before the counts were stored: the
    columns are added, the view recreated and the counts stored by db.connect."""
    old_view = "CREATE VIEW build_summary AS " + COUNTED.replace("ORDER BY b.id", "")
    # (a column after them: SQLite cannot drop the last one, a comment precedes it)
    drops = "".join(f"ALTER TABLE builds DROP COLUMN {c};" for c in db.SUMMARY_COUNTS)
    path = copy(
        counts_db,
        tmp_path,
        f"DROP VIEW build_summary; ALTER TABLE builds ADD COLUMN later INTEGER; {drops} {old_view};",
    )
    assert not set(db.SUMMARY_COUNTS) & {r[1] for r in rows(path, "PRAGMA table_info(builds)")}
    assert rows(path, "SELECT max(version) FROM schema_version") == [(db.SCHEMA_VERSION,)]
    db.connect(path).close()
    assert rows(path, "SELECT count(*) FROM builds WHERE n_full_inline IS NULL") == [(0,)]
    assert rows(path, "SELECT * FROM build_summary") == rows(counts_db, "SELECT * FROM build_summary")
