"""Manifests (ingest/catalog/manifest.py), stored groups (db.store_groups) and the
incremental `kernsurf build` (ingest/build.py), with small ELF files compiled
here standing in for kernels: no network."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import db
from ingest.catalog import batch as builder
from ingest.catalog import manifest
from ingest.catalog.manifest import ManifestError
from ingest.cli import cli
from ingest.errors import MirrorError
from ingest.queries import builds
from tests.support import ROOT

THREE = """\
builds:
  - id: old
    release: 6.1.0-56-amd64
    suite: bookworm
  - id: new
    release: 6.12.113+deb13-amd64
    suite: trixie
  - id: cloud
    release: 6.12.113+deb13-cloud-amd64
    suite: trixie
groups:
  - name: Regular
    kind: series
    members:
      - old: "6.1"
      - new: "6.10"
  - name: Flavor
    kind: variants
    members: [new, cloud]
"""


def parse(text: str) -> manifest.Manifest:
    return manifest.parse(textwrap.dedent(text), "m.yml")


# --------------------------------------------------------------------------- parsing


def test_parse_builds_and_groups():
    m = parse(THREE)
    old = m.build("old")
    assert (
        old.source,
        old.package,
        old.release,
        old.flavor,
        old.suite,
        old.arch,
        old.version,
        old.label,
    ) == (
        "debian",
        "linux-image-6.1.0-56-amd64-dbg",
        "6.1.0-56-amd64",
        "amd64",
        "bookworm",
        "amd64",
        None,
        "6.1.0-56-amd64",
    )
    assert old.line == 2
    regular, flavor = m.groups
    assert (regular.name, regular.kind, regular.baseline) == ("Regular", "series", None)
    assert [(x.build, x.label) for x in regular.members] == [
        ("old", "6.1"),
        ("new", "6.10"),
    ]  # "6.10" stays text
    assert flavor.baseline == manifest.Member("new", "6.12.113+deb13-amd64")  # label defaults to the build's
    assert [x.build for x in flavor.members] == ["new", "cloud"]


def test_package_form_defaults_and_arch_from_flavor():
    m = parse("""
        defaults:
          suite: trixie
          arch: amd64
        builds:
          - id: arm
            package: linux-image-6.12.113+deb13-armmp-dbg
            version: 6.12.113-1
            label: my-arm
          - id: amd
            release: 6.12.113+deb13-amd64
            suite: bookworm-security
    """)
    arm, amd = m.builds
    assert (arm.release, arm.flavor, arm.arch, arm.suite, arm.version, arm.label) == (
        "6.12.113+deb13-armmp",
        "armmp",
        "armhf",
        "trixie",
        "6.12.113-1",
        "my-arm",
    )
    assert (amd.suite, amd.arch) == ("bookworm-security", "amd64")
    assert m.groups == ()


def test_shipped_manifests_are_valid():
    default = manifest.load(ROOT / "manifests" / "default.yml")
    full = manifest.load(ROOT / "manifests" / "debian.yml")
    assert 2 <= len(default.builds) <= 3 and {b.arch for b in default.builds} == {"amd64"}
    assert {g.name for g in full.groups} >= {"Regular", "Arch", "Flavor"}
    arch = next(g for g in full.groups if g.name == "Arch")
    assert arch.kind == "variants" and full.build(arch.baseline.build).arch == "amd64"
    assert {full.build(x.build).arch for x in arch.members} >= {
        "arm64",
        "armhf",
        "ppc64el",
        "riscv64",
        "s390x",
    }
    # the default database is a subset of the full one: building debian.yml into it only adds builds
    assert {(b.release, b.arch) for b in default.builds} <= {(b.release, b.arch) for b in full.builds}


@pytest.mark.parametrize(
    "text, message",
    [
        ("builds: []\n", "m.yml:1: builds must be a non-empty list"),
        ("", "m.yml: empty manifest"),
        ("groups: []\n", "m.yml:1: the manifest needs a `builds:` list"),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suit: bookworm\n",
            "m.yml:4: a build: unknown field 'suit' (did you mean 'suite'?)",
        ),
        ("builds:\n  - id: a\n    release: 6.1.0-56-amd64\n", "m.yml:2: build 'a': needs a `suite:`"),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookwrom\n",
            "m.yml:4: build 'a': unknown Debian suite 'bookwrom' (did you mean 'bookworm'?)",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56\n    suite: bookworm\n",
            "m.yml:3: build 'a': '6.1.0-56' is not a full kernel release with a flavor",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    package: linux-image-6.1.0-56-amd64-dbg\n    suite: bookworm\n",
            "m.yml:2: build 'a': give exactly one of `release:`",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n    arch: arm64\n",
            "m.yml:5: build 'a': flavor 'amd64' is built for amd64, not arm64",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n    arch: sparc\n",
            "m.yml:5: build 'a': unknown architecture 'sparc'",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n    suite: trixie\n",
            "m.yml:5: a build: field 'suite' given twice",
        ),
        (
            "builds:\n  - id: a b\n    release: 6.1.0-56-amd64\n    suite: bookworm\n",
            "m.yml:2: build id 'a b': use letters, digits",
        ),
        (
            "builds:\n  - id: a\n    release: [6.1]\n    suite: bookworm\n",
            "m.yml:3: build 'a': release must be a single value, not a list",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n"
            "  - id: a\n    release: 6.1.0-55-amd64\n    suite: bookworm\n",
            "m.yml:5: build id 'a' is used twice (first on line 2)",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n"
            "  - id: b\n    release: 6.1.0-56-amd64\n    suite: bookworm-security\n",
            "m.yml:5: build 'b' is the same kernel as build 'a'",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n    label: x\n"
            "  - id: b\n    release: 6.1.0-55-amd64\n    suite: bookworm\n    label: x\n",
            "m.yml:6: build 'b': label 'x' is already the label of build 'a'",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n"
            "groups:\n  - name: G\n    kind: serie\n    members: [a]\n",
            "m.yml:7: group 'G': `kind:` must be series",
        ),
        (
            "builds:\n  - id: abc\n    release: 6.1.0-56-amd64\n    suite: bookworm\n"
            "groups:\n  - name: G\n    kind: series\n    members:\n      - abd: x\n",
            "m.yml:9: group 'G': no build with id 'abd' (did you mean 'abc'?)",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n"
            "groups:\n  - name: G\n    kind: variants\n    members: [a]\n",
            "m.yml:8: group 'G': variants need a baseline and at least one variant",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n"
            "  - id: b\n    release: 6.1.0-55-amd64\n    suite: bookworm\n"
            "groups:\n  - name: G\n    kind: series\n    members:\n      - a: x\n      - b: x\n",
            "m.yml:13: group 'G': label 'x' is used twice",
        ),
        (
            "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n"
            "groups:\n  - name: G\n    kind: series\n    members: [a]\n  - name: G\n    kind: series\n    members: [a]\n",
            "m.yml:9: group 'G' is defined twice (first on line 6)",
        ),
        ("builds:\n  - id: a\n    release: 6.1.0-56-amd64\n   suite: bookworm\n", "m.yml:4: not valid YAML"),
    ],
)
def test_invalid_manifests_name_line_and_field(text, message):
    with pytest.raises(ManifestError) as exc:
        manifest.parse(text, "m.yml")
    assert str(exc.value).startswith(message), str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match=r"nope.yml: cannot read \(No such file"):
        manifest.load(tmp_path / "nope.yml")


# --------------------------------------------------------------------------- tiny ELF "kernels" (conftest.elves)


class FakeFetcher:
    """Stands in for the archive: each release maps to one compiled ELF."""

    def __init__(self, elves, fail: set[str] = frozenset()):
        self.elves, self.fail = elves, set(fail)
        self.calls: list[str] = []
        self.evicted: list[str] = []
        self.numbers: dict[str, int] = {}

    def __call__(self, spec: manifest.BuildSpec, progress=None) -> builder.Fetched:
        self.calls.append(spec.id)
        if spec.id in self.fail:
            raise MirrorError(f"http://mirror/{spec.package}: HTTP 503", "http://mirror", 503)
        n = self.numbers.setdefault(spec.release, len(self.numbers) + 1)
        path = self.elves(n)
        if progress:
            progress(0, 10)
            progress(10, 10)
        return builder.Fetched(
            path=path,
            version="1.0-1",
            release=spec.release,
            arch=spec.arch,
            flavor=spec.flavor,
            downloaded=1000 * n,
            evict=lambda: self.evicted.append(spec.id) or 0,
        )


def stored(db_path: Path) -> list[tuple]:
    conn = db.connect(db_path)
    try:
        return conn.execute(
            "SELECT name, distro, version, release, arch, flavor FROM builds ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def stored_groups(db_path: Path) -> list[tuple]:
    conn = db.connect(db_path)
    try:
        names = dict(conn.execute("SELECT id, name FROM builds"))
        return [
            (g, kind, [(names[b], label) for b, label in members])
            for g, kind, members in builds.load_groups(conn)
        ]
    finally:
        conn.close()


# --------------------------------------------------------------------------- groups in the database


def test_store_groups_round_trip_keeps_ids_and_replaces(tmp_path, elves):
    path = tmp_path / "g.db"
    builder.build(parse(THREE), path, fetcher=FakeFetcher(elves), ingest_jobs=1)
    conn = db.connect(path)
    try:
        ids = dict(conn.execute("SELECT name, id FROM builds"))
        a, b, c = ids["6.1.0-56-amd64"], ids["6.12.113+deb13-amd64"], ids["6.12.113+deb13-cloud-amd64"]
        assert builds.load_groups(conn) == [
            ("Regular", "series", [(a, "6.1"), (b, "6.10")]),
            ("Flavor", "variants", [(b, "6.12.113+deb13-amd64"), (c, "6.12.113+deb13-cloud-amd64")]),
        ]
        regular_id = conn.execute("SELECT id FROM groups WHERE name = 'Regular'").fetchone()[0]

        db.store_groups(
            conn,
            [
                ("Arch", "variants", [(b, "amd64"), (a, "other")]),
                ("Regular", "series", [(a, "6.1"), (b, "6.12"), (c, "cloud")]),
            ],
        )
        assert builds.load_groups(conn) == [
            ("Arch", "variants", [(b, "amd64"), (a, "other")]),
            ("Regular", "series", [(a, "6.1"), (b, "6.12"), (c, "cloud")]),
        ]
        assert conn.execute("SELECT id FROM groups WHERE name = 'Regular'").fetchone()[0] == regular_id
        assert conn.execute("SELECT count(*) FROM group_members").fetchone()[0] == 5

        before = builds.load_groups(conn)
        with pytest.raises(sqlite3.IntegrityError):  # unknown build id: foreign key; nothing changes
            db.store_groups(conn, [("Regular", "series", [(a, "6.1"), (999, "ghost")])])
        assert builds.load_groups(conn) == before
    finally:
        conn.close()


# --------------------------------------------------------------------------- build


def test_build_is_incremental(tmp_path, elves, monkeypatch):
    path = tmp_path / "k.db"
    hooks: list[int] = []
    monkeypatch.setattr(
        builder.db,
        "build_search_index",
        lambda conn: hooks.append(conn.execute("SELECT count(*) FROM builds").fetchone()[0]),
    )
    two = parse(
        THREE.replace(
            "  - id: cloud\n    release: 6.12.113+deb13-cloud-amd64\n    suite: trixie\n", ""
        ).replace("  - name: Flavor\n    kind: variants\n    members: [new, cloud]\n", "")
    )
    fetcher = FakeFetcher(elves)
    lines: list[str] = []
    first = builder.build(two, path, fetcher=fetcher, ingest_jobs=1, report=lines.append)
    assert fetcher.calls == ["old", "new"]
    assert [(r.spec.id, r.state) for r in first.rows] == [("old", "ingested"), ("new", "ingested")]
    assert first.downloaded == 3000 and first.db_size == path.stat().st_size and hooks == [2]
    assert stored(path) == [
        ("6.1.0-56-amd64", "debian", "1.0-1", "6.1.0-56-amd64", "amd64", "amd64"),
        ("6.12.113+deb13-amd64", "debian", "1.0-1", "6.12.113+deb13-amd64", "amd64", "amd64"),
    ]
    assert any(line.startswith("ingesting old") for line in lines)
    assert any(line.startswith("done new: fetch 0 s, ingest") for line in lines)

    # Adding one build fetches and ingests only that one.
    fetcher.calls.clear()
    second = builder.build(parse(THREE), path, fetcher=fetcher, ingest_jobs=1)
    assert fetcher.calls == ["cloud"]
    assert [(r.spec.id, r.state) for r in second.rows] == [
        ("old", "stored"),
        ("new", "stored"),
        ("cloud", "ingested"),
    ]
    assert second.downloaded == 3000 and hooks == [2, 3]
    assert stored_groups(path) == [
        ("Regular", "series", [("6.1.0-56-amd64", "6.1"), ("6.12.113+deb13-amd64", "6.10")]),
        (
            "Flavor",
            "variants",
            [
                ("6.12.113+deb13-amd64", "6.12.113+deb13-amd64"),
                ("6.12.113+deb13-cloud-amd64", "6.12.113+deb13-cloud-amd64"),
            ],
        ),
    ]

    # Nothing new: nothing fetched, groups rewritten identically.
    fetcher.calls.clear()
    third = builder.build(parse(THREE), path, fetcher=fetcher, ingest_jobs=1)
    assert fetcher.calls == [] and {r.state for r in third.rows} == {"stored"} and len(stored(path)) == 3


def test_failed_fetch_keeps_the_others_and_resumes(tmp_path, elves):
    path = tmp_path / "k.db"
    fetcher = FakeFetcher(elves, fail={"new"})
    with pytest.raises(builder.BuildError, match=r"1 of 3 builds failed \(new\)") as exc:
        builder.build(parse(THREE), path, fetcher=fetcher, jobs=3, ingest_jobs=1)
    rows = {r.spec.id: r for r in exc.value.result.rows}
    assert rows["new"].state == "failed" and "HTTP 503" in rows["new"].error
    assert rows["old"].state == rows["cloud"].state == "ingested"
    assert len(stored(path)) == 2 and stored_groups(path) == []  # groups wait for every build

    fetcher.fail.clear()
    fetcher.calls.clear()
    builder.build(parse(THREE), path, fetcher=fetcher, ingest_jobs=1)
    assert fetcher.calls == ["new"] and len(stored(path)) == 3 and len(stored_groups(path)) == 2


def test_same_image_under_another_identity_is_not_ingested_twice(tmp_path, elves):
    from ingest import pipeline

    path = tmp_path / "k.db"
    fetcher = FakeFetcher(elves)
    fetcher.numbers["6.1.0-56-amd64"] = 7
    pipeline.ingest(elves(7), path, pipeline.Identity(label="by-hand"), jobs=1)  # no distro/release recorded
    result = builder.build(parse(THREE), path, fetcher=fetcher, ingest_jobs=1)
    rows = {r.spec.id: r for r in result.rows}
    assert rows["old"].state == "present" and rows["old"].name == "by-hand"
    assert stored_groups(path)[0][2][0] == ("by-hand", "6.1")


def test_prune_evicts_each_image_after_ingest(tmp_path, elves):
    fetcher = FakeFetcher(elves)
    builder.build(parse(THREE), tmp_path / "k.db", fetcher=fetcher, prune=True, ingest_jobs=1)
    assert fetcher.evicted == ["old", "new", "cloud"]


def test_fetches_stay_at_most_jobs_ahead_of_the_ingest(tmp_path, elves, monkeypatch):
    from ingest import pipeline

    events: list[str] = []
    fetcher = FakeFetcher(elves)

    def fetch(spec, progress=None):
        events.append(f"fetch {spec.id}")
        return fetcher(spec, progress)

    real_ingest = pipeline.ingest

    def ingest(path, db_path, identity, **kw):
        events.append(f"ingest {identity.release}")
        return real_ingest(path, db_path, identity, **kw)

    monkeypatch.setattr(pipeline, "ingest", ingest)
    builder.build(parse(THREE), tmp_path / "k.db", fetcher=fetch, jobs=1, ingest_jobs=1)
    # With one fetch thread: at most one image waits while another is ingested.
    ahead = [
        sum(e.startswith("fetch") for e in events[: k + 1])
        - sum(e.startswith("ingest") for e in events[: k + 1])
        for k in range(len(events))
    ]
    assert max(ahead) <= 2
    assert events.index("fetch cloud") > events.index("ingest 6.1.0-56-amd64")
    assert [e for e in events if e.startswith("ingest")] == [
        "ingest 6.1.0-56-amd64",
        "ingest 6.12.113+deb13-amd64",
        "ingest 6.12.113+deb13-cloud-amd64",
    ]


def test_group_diffs_are_computed_first(monkeypatch):
    calls: list[str] = []
    diff = builder.diff
    monkeypatch.setattr(diff, "compute_group_diffs", lambda conn: calls.append("diffs"))
    other = lambda conn: calls.append("other")  # noqa: E731
    monkeypatch.setattr(builder.db, "build_search_index", other)
    assert builder.finalizers()[:2] == [diff.compute_group_diffs, other]


# --------------------------------------------------------------------------- CLI


def test_cli_build_reports_manifest_errors(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("builds:\n  - id: a\n    release: 6.1.0-56-amd64\n")
    result = CliRunner().invoke(cli, ["build", str(bad), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {bad}:2: build 'a': needs a `suite:` (e.g. bookworm, trixie, sid), here or in defaults"
    )
    assert not (tmp_path / "x.db").exists()


def test_cli_build_prints_a_table(tmp_path, elves, monkeypatch):
    (tmp_path / "m.yml").write_text(THREE)
    fetcher = FakeFetcher(elves, fail={"cloud"})
    monkeypatch.setattr(builder, "DebianFetcher", lambda *a, **kw: fetcher)
    db_path = tmp_path / "k.db"
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "m.yml"), "--db", str(db_path), "-j", "1"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "build",
        "name",
        "state",
        "fetch",
        "s",
        "ingest",
        "s",
        "downloaded",
        "MB",
        "DB",
        "MB",
    ]
    assert lines[1].split()[:3] == ["old", "6.1.0-56-amd64", "ingested"]
    assert lines[3].split()[:3] == ["cloud", "6.12.113+deb13-cloud-amd64", "failed"]
    assert "Error: 1 of 3 builds failed (cloud)" in result.stderr
    assert "cloud: fetch: http://mirror/linux-image-6.12.113+deb13-cloud-amd64-dbg: HTTP 503" in result.stderr

    fetcher.fail.clear()
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "m.yml"), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert [line.split()[2] for line in result.stdout.splitlines()[1:4]] == ["stored", "stored", "ingested"]
    assert "3 builds in" in result.stdout and "2 groups" in result.stdout


def test_cached_images_are_ingested_first(tmp_path, elves):
    fetcher = FakeFetcher(elves)
    fetcher.is_cached = lambda spec: spec.id == "cloud"
    result = builder.build(parse(THREE), tmp_path / "k.db", fetcher=fetcher, jobs=1, ingest_jobs=1)
    assert fetcher.calls[0] == "cloud"
    assert [name for name, *_ in stored(tmp_path / "k.db")] == [
        "6.12.113+deb13-cloud-amd64",
        "6.1.0-56-amd64",
        "6.12.113+deb13-amd64",
    ]
    assert [r.spec.id for r in result.rows] == ["old", "new", "cloud"]  # the report keeps manifest order


def test_database_error_stops_the_run(tmp_path, elves, monkeypatch):
    import sqlite3

    from ingest import pipeline

    def full(*args, **kw):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(pipeline, "ingest", full)
    fetcher = FakeFetcher(elves)
    with pytest.raises(builder.BuildError, match=r"1 of 3 builds failed \(old\), 2 not attempted") as exc:
        builder.build(parse(THREE), tmp_path / "k.db", fetcher=fetcher, jobs=1, ingest_jobs=1)
    assert exc.value.result.rows[0].error == f"database {tmp_path / 'k.db'}: database or disk is full"
    assert [r.state for r in exc.value.result.rows] == ["failed", "pending", "pending"]
