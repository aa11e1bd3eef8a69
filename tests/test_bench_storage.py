"""scripts/bench_storage.py (`make bench-storage`): bytes per table and index by
dbstat and by its fallback page walk (dbstat as the oracle), the archive
projection's arithmetic, and a run that ingests fixture ELFs into a fresh database."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.programs import compile_pair

_spec = importlib.util.spec_from_file_location("bench_storage", ROOT / "scripts" / "bench_storage.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_storage"] = bench  # dataclasses resolve their module
_spec.loader.exec_module(bench)


def _by_name(sizes) -> dict[str, tuple[str, str, int]]:
    return {o.name: (o.kind, o.table, o.bytes) for o in sizes}


def test_the_page_walk_counts_what_dbstat_counts(program_db, tmp_path):
    """Every table and index of a kernsurf database, and a table and an index whose
    cells spill into overflow pages (payloads of 1 to 40 000 bytes on 4 kB pages)."""
    if not bench.has_dbstat(sqlite3.connect(":memory:")):
        pytest.skip("this SQLite has no dbstat to compare with")
    path = tmp_path / "copy.db"
    shutil.copy(program_db, path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany(
        "INSERT INTO blobs (body) VALUES (?)", [("x" * (n * 397 % 40_000 + 1),) for n in range(400)]
    )
    conn.execute("CREATE INDEX blobs_body ON blobs (body)")
    conn.execute("CREATE TABLE pairs (a TEXT, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID")
    conn.executemany("INSERT INTO pairs VALUES (?, ?)", [("y" * (n * 991 % 9000), n) for n in range(300)])
    conn.commit()
    conn.close()
    by_dbstat, method = bench.object_sizes(path)
    by_walk, fallback = bench.object_sizes(path, use_dbstat=False)
    assert method == "dbstat" and fallback.startswith("b-tree page walk")
    assert _by_name(by_walk) == _by_name(by_dbstat)
    assert _by_name(by_walk)["blobs_body"][2] > 400 * 4096  # overflow pages were counted
    assert len(by_walk) > 40


def _cost(name: str, release: str, mb: float, modules: int | None = 4000, flavor: str = "amd64") -> object:
    return bench.BuildCost(
        name=name,
        image="vmlinux",
        bytes_added=int(mb * 1e6),
        wall=100.0,
        write=10.0,
        rss_mb=1000.0,
        anchor=10.0,
        modules=modules,
        release=release,
        arch="amd64",
        flavor=flavor,
    )


def test_the_projection_weighs_first_builds_of_a_line_and_point_releases():
    costs = [
        _cost("6.12.107", "6.12.107+deb13-amd64", 336.0),  # first of 6.12 amd64
        _cost("6.12.113", "6.12.113+deb13-amd64", 160.0),  # point release
        _cost("6.1.0-56", "6.1.0-56-amd64", 300.0),  # first of 6.1 amd64
        _cost("6.12.115", "6.12.115+deb13-amd64", 150.0),  # point release
        _cost(
            "6.12.113 cloud", "6.12.113+deb13-cloud-amd64", 200.0, flavor="cloud-amd64"
        ),  # a new flavor: first
        _cost("6.1.0-56 alone", "6.1.0-56-amd64", 50.0, modules=None),  # vmlinux alone, first
    ]
    assert bench.classify(costs) == [True, False, True, False, True, True]
    with_modules, alone = bench.project(costs, builds=324, lines=70)
    assert (with_modules.n_first, with_modules.n_point) == (3, 2)
    assert with_modules.first_mb == pytest.approx((336 + 300 + 200) / 3)
    assert with_modules.point_mb == pytest.approx(155.0)
    assert with_modules.total_gb == pytest.approx((70 * (836 / 3) + 254 * 155) / 1e3)
    assert (alone.n_first, alone.point_mb, alone.total_gb) == (1, None, None)


def test_a_manifest_is_projected_by_what_each_build_shares_with_the_ones_before():
    measured = [
        _cost("6.1.0-56", "6.1.0-56-amd64", 340.0),  # first: an empty database
        _cost("6.12.113", "6.12.113+deb13-amd64", 120.0),  # a new series
        _cost("6.12.115", "6.12.115+deb13-amd64", 8.0),  # a point release
        _cost("6.12.116", "6.12.116+deb13-amd64", 6.0),  # a point release
        _cost("cloud", "6.12.113+deb13-cloud-amd64", 12.0, flavor="cloud-amd64"),  # a new flavor
        _cost("alone", "6.12.116+deb13-amd64", 2.0, modules=None),  # vmlinux alone: not counted
    ]
    specs = [
        ("5.10", "5.10.0-46-amd64", "amd64", "amd64"),
        ("6.12", "6.12.113+deb13-amd64", "amd64", "amd64"),
        ("rt", "6.12.113+deb13-rt-amd64", "amd64", "rt-amd64"),
        ("6.12.115", "6.12.115+deb13-amd64", "amd64", "amd64"),
    ]
    p = bench.project_manifest(measured, specs)
    assert p.means == {"first": 340.0, "series": 120.0, "point": 7.0, "flavor": 12.0}
    assert p.builds == [("5.10", "first", 340.0), ("6.12", "series", 120.0), ("rt", "flavor", 12.0), ("6.12.115", "point", 7.0)]  # fmt: skip
    assert p.total_mb == pytest.approx(479.0)
    arm64 = bench.project_manifest(measured, [*specs, ("arm64", "6.12.113+deb13-arm64", "arm64", "arm64")])
    assert arm64.builds[-1] == ("arm64", "arch", None) and arm64.total_mb is None  # no arch measured


def test_the_benchmark_ingests_images_into_a_fresh_database_and_reports(tmp_path):
    a, b = compile_pair(tmp_path)
    db = tmp_path / "bench" / "storage.db"
    db.parent.mkdir()
    script = [sys.executable, str(ROOT / "scripts" / "bench_storage.py"), str(db)]
    proc = subprocess.run([*script, str(a), str(b), "--modules", "none"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "bytes per table and index (dbstat)" in out
    assert "instance_facts" in out and "sqlite_autoindex_builds_1" in out
    costs = json.loads((tmp_path / "bench" / "storage.db.bench.json").read_text())
    rows = [line.split() for line in out.splitlines()]
    assert [c["name"] for c in costs] == [r[0] for r in rows if r[1:2] == ["first"]]
    assert len(costs) == 2 and all(c["rss_mb"] > 0 for c in costs)
    # The first build makes the schema and its rows; the second's few rows may fit in free pages.
    assert costs[0]["bytes_added"] > 100_000 and 0 <= costs[1]["bytes_added"] < costs[0]["bytes_added"]
    # Bytes per table: the first build made every table; each build grew the builds table.
    assert costs[0]["tables_added"]["instance_facts"] > 0 and costs[0]["tables_added"]["builds"] > 0
    assert sum(costs[0]["tables_added"].values()) <= costs[0]["bytes_added"]
    assert "MB: " in out
    if shutil.which("pahole"):
        assert all(c["anchor"] for c in costs) and "x)" in out  # timings as ratios to the anchor
        # the read benchmarks' anchor: over the database's first build, each timing a ratio to it
        line = bench.anchor_line(db, {"check wall": 0.0})
        assert line.startswith(f"anchor: pahole -j2 --btf_encode_detached over {a}: ")
        assert line.endswith("as ratios to it: check wall 0x")
    assert "projection for the archive: 324 builds, 70 first-of-line" in out
    # A later run reports the kept measurements; an image already in the database is not ingested again.
    manifest = ROOT / "manifests" / "debian.yml"
    again = subprocess.run([*script, str(a), "--manifest", str(manifest)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{costs[0]['name']}: already in" in again.stdout
    # the manifest's projection, with modules: these builds had none, so no kind is measured
    assert f"projection for {manifest} with modules (mean MB added by kind, measured: none)" in again.stdout
    assert "6.12-arm64 arch not measured" in " ".join(again.stdout.split())
    assert json.loads((tmp_path / "bench" / "storage.db.bench.json").read_text()) == costs
