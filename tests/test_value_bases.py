"""Value bases (docs/storage.md#value-bases): a build's addresses and
declaration lines are stored as runs of deltas to the first stored build of its
line, not to whichever build first stored a fact. The oracle is the same images
ingested under releases of four different series, where no build has a base:
every build's values must read back identical, after a base is deleted or
replaced too, and through a merge."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest import db, pipeline
from ingest.db.values import Run, assign_value_bases, kernel_series, sum_runs
from tests.support.programs import compile_version

#: Build label -> (image, release). X is another line; A, B and C are one (6.1,
#: same arch and flavor): B and C are v1 again and v2 again, compiled in other
#: directories (so other build-ids), and X stored v1's facts first, with v1's values.
LINE = {"X": ("v1", "5.10.0-1-amd64"), "A": ("v2", "6.1.0-1-amd64"), "B": ("v1", "6.1.0-2-amd64"), "C": ("v2", "6.1.0-3-amd64")}  # fmt: skip
#: The same images, each of its own series: no build has a value base.
APART = {"X": "5.10.0-1-amd64", "A": "6.1.0-1-amd64", "B": "6.2.0-2-amd64", "C": "6.3.0-3-amd64"}

#: Each build's values, by name: instances (declaration line, address), symbols and variables (address).
VALUES = {
    "instances": "SELECT b.name, n.name, i.external, i.inline, i.defined, i.decl_line, i.address"
    " FROM instances i JOIN builds b ON b.id = i.build_id JOIN names n ON n.id = i.name_id",
    "symbols": "SELECT b.name, n.name, s.size, s.binding, s.address"
    " FROM symbols s JOIN builds b ON b.id = s.build_id JOIN names n ON n.id = s.name_id",
    "variables": "SELECT b.name, n.name, v.size, v.address"
    " FROM variables v JOIN builds b ON b.id = v.build_id JOIN names n ON n.id = v.name_id",
}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for label, (version, _) in LINE.items():
        out[label] = compile_version(tmp_path_factory.mktemp(f"bases-{label}"), version)
    return out


def _ingest(path: Path, images: dict[str, Path], releases: dict[str, str], labels: str = "XABC") -> Path:
    for label in labels:
        identity = pipeline.Identity(label=label, release=releases[label], flavor="amd64")
        pipeline.ingest(images[label], path, identity, jobs=1)
    return path


def _values(path: Path, labels: str = "XABC") -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {
            view: sorted(row for row in conn.execute(sql) if row[0] in labels) for view, sql in VALUES.items()
        }
    finally:
        conn.close()


def _bases(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(
            conn.execute(
                "SELECT b.name, base.name FROM value_bases v JOIN builds b ON b.id = v.build_id"
                " JOIN builds base ON base.id = v.base_id"
            ).fetchall()
        )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def apart(images, tmp_path_factory) -> Path:
    return _ingest(tmp_path_factory.mktemp("apart") / "apart.db", images, APART)


def _line(images, path: Path) -> Path:
    return _ingest(path, images, {k: release for k, (_, release) in LINE.items()})


def test_a_line_takes_its_first_build_as_base_and_reads_back_its_values(images, apart, tmp_path):
    line = _line(images, tmp_path / "line.db")
    assert _bases(apart) == {}
    assert _bases(line) == {"B": "A", "C": "A"}
    # B's values differ from the stored ones (X's) and from its base's (A's)
    with sqlite3.connect(line) as conn:
        b = conn.execute("SELECT id FROM builds WHERE name = 'B'").fetchone()[0]
        moved = conn.execute(
            "SELECT count(*) FROM instance_address_runs WHERE build_id = ? AND delta != 0", (b,)
        )
        assert moved.fetchone()[0] > 0
    assert _values(line) == _values(apart)


def test_deleting_a_base_rebases_its_line(images, apart, tmp_path):
    line = _line(images, tmp_path / "line.db")
    conn = db.connect(line)
    db.delete_build(conn, conn.execute("SELECT id FROM builds WHERE name = 'A'").fetchone()[0])
    conn.close()
    assert _bases(line) == {"C": "B"}  # B, the first left, is the base now
    assert _values(line, "XBC") == _values(apart, "XBC")
    with sqlite3.connect(line) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_replacing_a_base_keeps_every_value(images, apart, tmp_path):
    line = _line(images, tmp_path / "line.db")
    identity = pipeline.Identity(label="A", release=LINE["A"][1], flavor="amd64")
    pipeline.ingest(images["A"], line, identity, replace=True, jobs=1)
    assert _bases(line) == {"A": "B", "C": "B"}
    assert _values(line) == _values(apart)


def test_a_merged_line_reads_back_its_values(images, apart, tmp_path):
    line = _line(images, tmp_path / "line.db")
    merged = tmp_path / "merged.db"
    conn = db.connect(merged)
    db.merge(conn, line)
    conn.close()
    assert _bases(merged) == {"B": "A", "C": "A"}
    assert _values(merged) == _values(apart)


def test_a_database_without_bases_gets_them_and_keeps_every_value(images, apart, tmp_path):
    """What the upgrade to schema 11 does: builds stored before value bases get
    the base an ingest would have given them, by run arithmetic."""
    older = tmp_path / "older.db"
    older.write_bytes(apart.read_bytes())
    conn = db.connect(older)
    with conn:  # as if they had been stored as one line, each without a base
        for label, (_, release) in LINE.items():
            conn.execute("UPDATE builds SET release = ? WHERE name = ?", (release, label))
    with conn:
        assert assign_value_bases(conn) == 2
    conn.close()
    assert _bases(older) == {"B": "A", "C": "A"}  # A, the line's first, has none: not C, stored later
    assert _values(older) == _values(apart)


def test_sum_runs_is_the_sum_at_every_fact_id():
    # a: 0 below 10, 5 from 10, 7 from 20; b: 0 below 15, -5 from 15
    a, b = [Run(10, 5), Run(20, 7)], [Run(15, -5)]
    assert sum_runs([(1, a), (1, b)]) == [Run(10, 5), Run(15, 0), Run(20, 2)]
    assert sum_runs([(1, a), (-1, a)]) == []  # equal deltas cancel, no run left
    assert sum_runs([(1, a), (-1, [Run(10, 5)])]) == [Run(20, 2)]  # 10..19 is 0 like before 10: merged


@pytest.mark.parametrize(
    ("release", "series"),
    [
        ("6.12.113+deb13-amd64", "6.12"),
        ("6.1.0-56-amd64", "6.1"),
        ("5.14.0-503.el9.x86_64", "5.14"),
        (None, None),
    ],
)
def test_kernel_series(release, series):
    assert kernel_series(release) == series
