"""kernsurf delete and export: ingest builds A, B and C, delete B (or export
A and C), and A and C answer as a database that never held B does; nothing
that only B used is left, the database passes SQLite's integrity and foreign
key checks, and an export serves its pages."""

from __future__ import annotations

import sqlite3
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import db, pipeline
from ingest.cli import cli
from tests.support import facts
from tests.support.content import view_rows
from tests.support.programs import compile_version
from tests.support.site import free_port, served, visible_text

#: Shared tables and the column that says what a row holds (its content, not its id).
CONTENTS = {
    "names": "name",
    "paths": "path",
    "type_texts": "text",
    "texts": "text",
    "prototypes": "digest",
    "layouts": "digest",
}


@pytest.fixture(scope="module")
def images(tmp_path_factory, program) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("delete")
    return {"A": compile_version(work, "v1"), "B": compile_version(work, "v2"), "C": program}


def _ingest(path: Path, images: dict[str, Path], labels: str) -> Path:
    for label in labels:
        pipeline.ingest(images[label], path, pipeline.Identity(label=label), jobs=1)
    return path


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
    # the facts only B had (docs/storage.md), then the shared rows only it used
    assert result.output.startswith("deleted B (and ") and "function_facts, " in result.output
    assert f", {counts} only it used)" in result.output
    assert view_rows(three) == view_rows(never)
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
    assert view_rows(path) == view_rows(_ingest(tmp_path / "again.db", images, "A"))
    assert len(path.read_bytes()) == len(before)


def test_export_of_a_and_c_is_the_database_without_b(images, tmp_path):
    three = _ingest(tmp_path / "abc.db", images, "ABC")
    never = _ingest(tmp_path / "ac.db", images, "AC")
    source = three.read_bytes()
    out = tmp_path / "export.db"

    result = CliRunner().invoke(cli, ["export", str(out), "--db", str(three), "--build", "A", "--build", "C"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"exported 2 builds (A, C) to {out}")
    assert three.read_bytes() == source  # only read
    assert view_rows(out) == view_rows(never)
    assert _contents(out) == _contents(never)
    conn = sqlite3.connect(out)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file, no -wal beside it
    conn.close()


def test_export_selects_by_group_and_arch_and_refuses_nothing(images, tmp_path):
    path = _ingest(tmp_path / "ab.db", images, "AB")
    conn = db.connect(path)
    ids = dict(conn.execute("SELECT name, id FROM builds"))
    db.store_groups(conn, [("Only-B", "series", [(ids["B"], "2.0")])])
    conn.close()
    runner = CliRunner()
    out = tmp_path / "b.db"
    result = runner.invoke(
        cli, ["export", str(out), "--db", str(path), "--group", "Only-B", "--arch", "amd64"]
    )
    assert result.exit_code == 0, result.output
    assert sqlite3.connect(out).execute("SELECT name FROM builds").fetchall() == [("B",)]
    for args, message in (
        (["--arch", "s390x"], "Error: no build matches the selection"),
        (["--group", "Nope"], "Error: no group 'Nope' (groups: Only-B)"),
        ([], "Error: name what to export"),
    ):
        result = runner.invoke(cli, ["export", str(tmp_path / "none.db"), "--db", str(path), *args])
        assert result.exit_code == 1 and result.output.startswith(message), result.output
        assert not (tmp_path / "none.db").exists()
    result = runner.invoke(cli, ["export", str(out), "--db", str(path), "--build", "A"])
    assert result.exit_code == 1 and "exists" in result.output


def test_an_export_serves_its_pages(images, tmp_path):
    three = _ingest(tmp_path / "abc.db", images, "ABC")
    out = tmp_path / "a.db"
    assert CliRunner().invoke(cli, ["export", str(out), "--db", str(three), "--build", "A"]).exit_code == 0
    port = free_port()
    cmd = [sys.executable, "-m", "ingest", "serve", str(out), "--port", str(port)]
    with served(cmd, port, tmp_path / "serve.log") as base:
        builds = visible_text(urllib.request.urlopen(base + "/builds").read().decode())
        page = " ".join(
            visible_text(urllib.request.urlopen(base + "/function/fe_removed").read().decode()).split()
        )
    assert "Aamd64" in builds and "A: No inline 14" in builds  # its one row; the numbers table
    assert "Bamd64" not in builds and "Camd64" not in builds
    assert "Function: fe_removed" in page and "All builds A" in page


def test_replace_drops_what_only_the_old_version_used(images, tmp_path):
    path = _ingest(tmp_path / "ab.db", images, "AB")
    conn = sqlite3.connect(path)
    # B's fe_map as an earlier ingest might have stored it: a prototype no one else has.
    conn.execute(
        "INSERT INTO prototypes (id, digest, text, return_type_id, variadic)"
        " VALUES (9999, 424242, 'int fe_map(long gone);', (SELECT min(id) FROM type_texts), 0)"
    )
    b = facts.build_id(conn, "B")
    facts.change(conn, "function", b, facts.function_fact(conn, b, "fe_map"), prototype_id=9999)
    conn.commit()
    conn.close()
    pipeline.ingest(images["B"], path, pipeline.Identity(label="B"), replace=True, jobs=1)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM prototypes WHERE id = 9999").fetchone() == (0,)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
    assert view_rows(path) == view_rows(_ingest(tmp_path / "again.db", images, "AB"))
