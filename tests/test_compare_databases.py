"""scripts/compare_databases.py, the check that a restructuring changed no
stored row: two ingests of one program compare identical, and one changed,
missing or extra row in any table is reported."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from ingest import pipeline

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "compare_databases.py"


def _compare(a: Path, b: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, a, b], capture_output=True, text=True)


def test_two_ingests_of_one_image_are_identical(program, tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    pipeline.ingest(program, a)
    pipeline.ingest(program, b)
    done = _compare(a, b)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1] == "all tables identical"
    assert "instance_facts: " in done.stdout and "call_facts: " in done.stdout


def test_a_changed_missing_or_duplicated_row_is_reported(program_db, tmp_path):
    changed, missing, doubled = (tmp_path / f"{n}.db" for n in ("changed", "missing", "doubled"))
    for copy in (changed, missing, doubled):
        shutil.copy(program_db, copy)
    with sqlite3.connect(changed) as conn:
        conn.execute(
            "UPDATE instance_facts SET decl_line = decl_line + 1 WHERE id = (SELECT min(id) FROM instance_facts)"
        )
    with sqlite3.connect(missing) as conn:
        conn.execute("DELETE FROM call_facts WHERE id = (SELECT min(id) FROM call_facts)")
    with sqlite3.connect(doubled) as conn:  # a symbol again, under a new id
        conn.execute(
            "INSERT INTO symbol_facts SELECT (SELECT max(id) + 1 FROM symbol_facts), name_id, stem_id, suffixes,"
            " size, binding, section, ftrace, kprobe_blocked, module_name_id, occurrence + 1, address"
            " FROM symbol_facts LIMIT 1"
        )
    for copy, table, counts in (
        (changed, "instance_facts", "1 only before, 1 only after"),
        (missing, "call_facts", "1 only before, 0 only after"),
        (doubled, "symbol_facts", "0 only before, 1 only after"),
    ):
        done = _compare(program_db, copy)
        assert done.returncode == 1
        assert [line for line in done.stdout.splitlines() if "DIFFER" in line] == [
            f"{table}: {_rows(program_db, table)} rows, DIFFER: {counts}"
        ]


def _rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
