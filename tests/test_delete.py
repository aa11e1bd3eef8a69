"""kernsurf delete: ingest builds A, B and C, delete B, and A and C answer as
a database that never held B does; nothing that only B used is left, and
the database passes SQLite's integrity and foreign key checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import db, pipeline
from ingest.cli import cli
from tests.support.programs import compile_version

#: Shared tables and the column that says what a row holds (its content, not its id).
CONTENTS = {
    "names": "name",
    "paths": "path",
    "type_texts": "text",
    "texts": "text",
    "prototypes": "digest",
    "layouts": "digest",
}
#: View columns that differ between two ingests of one image by nature (ids, when and how long).
VOLATILE = {"ingest_seconds", "ingested_at"}


@pytest.fixture(scope="module")
def images(tmp_path_factory, program) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("delete")
    return {"A": compile_version(work, "v1"), "B": compile_version(work, "v2"), "C": program}


def _ingest(path: Path, images: dict[str, Path], labels: str) -> Path:
    for label in labels:
        pipeline.ingest(images[label], path, pipeline.Identity(label=label), jobs=1)
    return path


def _views(path: Path) -> dict[str, list[tuple]]:
    """Every view's rows, without id columns, sorted."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for (view,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name"):
            cursor = conn.execute(f"SELECT * FROM {view}")
            keep = [
                k
                for k, d in enumerate(cursor.description)
                if d[0] != "id" and not d[0].endswith("_id") and d[0] not in VOLATILE
            ]
            out[view] = sorted((tuple(row[k] for k in keep) for row in cursor), key=repr)
        return out
    finally:
        conn.close()


def _contents(path: Path) -> dict[str, set]:
    conn = sqlite3.connect(path)
    try:
        return {t: {v for (v,) in conn.execute(f"SELECT {c} FROM {t}")} for t, c in CONTENTS.items()}
    finally:
        conn.close()


def test_delete_b_leaves_a_and_c_as_if_b_never_was(images, tmp_path):
    three = _ingest(tmp_path / "abc.db", images, "ABC")
    never = _ingest(tmp_path / "ac.db", images, "AC")
    only_b = {t: _contents(three)[t] - _contents(never)[t] for t in CONTENTS}
    assert only_b["names"] and only_b["prototypes"]  # B has names and prototypes of its own

    result = CliRunner().invoke(cli, ["delete", "B", "--db", str(three)])

    assert result.exit_code == 0, result.output
    counts = ", ".join(
        f"{len(only_b[t])} {t}" for t in ("prototypes", "layouts", "names", "type_texts") if only_b[t]
    )
    assert result.output.startswith(f"deleted B (and {counts} only it used)")
    assert _views(three) == _views(never)
    assert _contents(three) == _contents(never)
    conn = sqlite3.connect(three)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_delete_takes_the_builds_groups_and_stored_pairs_with_it(images, tmp_path):
    path = _ingest(tmp_path / "grouped.db", images, "AB")
    conn = db.connect(path)
    ids = dict(conn.execute("SELECT name, id FROM builds"))
    db.store_groups(conn, [("Regular", "series", [(ids["A"], "1.0"), (ids["B"], "2.0")])])
    conn.close()
    assert CliRunner().invoke(cli, ["diff", "A", "B", "--store", "--db", str(path)]).exit_code == 0

    assert CliRunner().invoke(cli, ["delete", "B", "--db", str(path)]).exit_code == 0

    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM builds").fetchall() == [("A",)]
    assert conn.execute("SELECT label FROM group_members").fetchall() == [("1.0",)]
    assert conn.execute("SELECT count(*) FROM diff_pairs").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM changes").fetchone() == (0,)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_delete_of_an_unknown_build_is_one_line_and_changes_nothing(images, tmp_path):
    path = _ingest(tmp_path / "one.db", images, "A")
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["delete", "Z", "--db", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no build 'Z'") and result.output.count("\n") == 1
    assert _views(path) == _views(_ingest(tmp_path / "again.db", images, "A"))
    assert len(path.read_bytes()) == len(before)
