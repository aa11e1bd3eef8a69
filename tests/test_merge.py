"""`kernsurf merge`: shards built apart become one database by a union of
facts (docs/storage.md#merging-shards). Oracle: the same builds ingested one
after the other into one database (conftest.module_db: the fixture program
with modules, twice) — every view answers the same, every fact is stored once."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import db, pipeline
from ingest.cli import cli
from ingest.db.families import FAMILIES
from ingest.queries.builds import StoredGroup, StoredMember
from tests.support.content import view_rows
from tests.support.modules import module_builds
from tests.support.programs import compile_pair

SHARED = (
    "names",
    "paths",
    "type_texts",
    "texts",
    "prototypes",
    "prototype_params",
    "layouts",
    "struct_fields",
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Path, Path]:
    """Build "A" and build "B" of conftest.module_db, each alone in its own database."""
    tmp = tmp_path_factory.mktemp("shards")
    out = []
    for label, program, tree in module_builds(tmp):
        shard = tmp / f"{label}.db"
        pipeline.ingest(program, shard, pipeline.Identity(label=label), modules=tree)
        out.append(shard)
    return out[0], out[1]


def _counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        tables = [*(f.facts for f in FAMILIES), *SHARED, "builds", "modules"]
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()


def test_merged_shards_answer_as_one_database(shards, module_db, tmp_path):
    merged = tmp_path / "merged.db"
    result = CliRunner().invoke(cli, ["merge", *map(str, shards), "--db", str(merged)])
    assert result.exit_code == 0, result.output
    assert f"merged 1 builds from {shards[0]}" in result.output
    assert f"merged 1 builds from {shards[1]}" in result.output
    assert f"merging B (1 of 1) from {shards[1]}" in result.output  # progress, on stderr
    assert _counts(merged) == _counts(module_db)  # each fact once: B's facts matched A's
    want, got = view_rows(module_db), view_rows(merged)
    assert got.keys() == want.keys()
    for view in want:
        assert got[view] == want[view], view
    assert sum(map(len, want.values())) > 500  # the views had rows to compare
    conn = sqlite3.connect(merged)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_merging_again_adds_nothing(shards, tmp_path):
    merged = tmp_path / "merged.db"
    shutil.copy(shards[0], merged)
    conn = db.connect(merged)
    assert db.merge(conn, shards[1]).merged == ["B"]
    before = _counts(merged)
    again = db.merge(conn, shards[1])
    conn.close()
    assert (again.merged, again.skipped) == ([], ["B"])
    assert _counts(merged) == before


def test_groups_are_united_in_order(shards, tmp_path):
    a, b = (Path(shutil.copy(s, tmp_path / s.name)) for s in shards)
    for path, name, label in ((a, "A", "first"), (b, "B", "second")):
        conn = db.connect(path)
        build = conn.execute("SELECT id FROM builds WHERE name = ?", (name,)).fetchone()[0]
        db.store_groups(conn, [StoredGroup("Regular", "series", [StoredMember(build, label)])])
        conn.close()
    conn = db.connect(a)
    db.merge(conn, b)
    members = conn.execute(
        "SELECT b.name, m.label FROM group_members m JOIN builds b ON b.id = m.build_id ORDER BY m.position"
    ).fetchall()
    conn.close()
    assert members == [("A", "first"), ("B", "second")]


def test_a_bad_shard_is_refused_and_changes_nothing(shards, tmp_path):
    merged = tmp_path / "merged.db"
    shutil.copy(shards[0], merged)
    before = merged.read_bytes()
    not_kernsurf = tmp_path / "other.db"
    sqlite3.connect(not_kernsurf).execute("CREATE TABLE t (x)").connection.close()
    old = tmp_path / "old.db"
    shutil.copy(shards[1], old)
    with sqlite3.connect(old) as conn:
        conn.execute("UPDATE schema_version SET version = 3")
    clash = tmp_path / "clash.db"
    shutil.copy(shards[1], clash)
    with sqlite3.connect(clash) as conn:
        conn.execute("UPDATE builds SET name = 'A'")
    for shard, says in (
        (tmp_path / "missing.db", "no such database"),
        (not_kernsurf, "not a kernsurf database"),
        (old, "schema 3"),
        (clash, "build name A is taken here by another build"),
    ):
        result = CliRunner().invoke(cli, ["merge", str(shard), "--db", str(merged)])
        assert result.exit_code == 1 and says in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert merged.read_bytes() == before


def test_a_shard_of_several_builds_keeps_their_own_values(tmp_path):
    """A shard's later build keeps its addresses and lines as runs of deltas to
    its first build's: merged into an empty database they read back the same."""
    shard = tmp_path / "pair.db"
    for elf in compile_pair(tmp_path):
        pipeline.ingest(elf, shard, pipeline.Identity(label=elf.name), jobs=1)
    with sqlite3.connect(shard) as conn:  # the fixture does exercise the runs
        for runs in ("instance_decl_line_runs", "symbol_address_runs", "variable_address_runs"):
            assert conn.execute(f"SELECT count(*) FROM {runs} WHERE delta != 0").fetchone()[0] > 0, runs
    merged = tmp_path / "merged.db"
    conn = db.connect(merged)
    assert db.merge(conn, shard).merged == ["a", "b"]
    conn.close()
    assert view_rows(merged) == view_rows(shard)
    assert _counts(merged) == _counts(shard)
