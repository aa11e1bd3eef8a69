"""`kernsurf fetch` and `kernsurf build` against the local fake Debian mirror of
tests/support/mirror.py (no network): the CLI layer and the real Debian fetcher."""

from __future__ import annotations

from click.testing import CliRunner

from ingest import db
from ingest.catalog import batch as builder
from ingest.catalog import manifest
from ingest.cli import cli
from ingest.queries import builds
from tests.support.mirror import REL, build_deb, dbg_entries, modules_entries, read_tree, standard_archive


def test_fetch_debian_prints_the_cached_path(fake, cache):
    standard_archive(fake)
    result = CliRunner().invoke(cli, ["fetch", "debian", REL, "--suite", "bookworm"])
    assert result.exit_code == 0, result.output
    key = cache / "debian" / f"linux-image-{REL}-dbg_6.1.192-2_amd64"
    assert result.stdout == f"{key / 'vmlinux'}\n"
    assert f"linux-image-{REL}-dbg 6.1.192-2 (bookworm-security" in result.stderr
    assert "downloaded" in result.stderr and f"config: {key / 'config'}" in result.stderr
    assert f"modules: {key / 'modules'}" in result.stderr

    again = CliRunner().invoke(cli, ["fetch", "debian", f"linux-image-{REL}-dbg", "--no-config"])
    assert again.exit_code == 0 and again.stdout == result.stdout and "already in the cache" in again.stderr


def test_fetch_debian_errors_are_one_line(fake, cache):
    standard_archive(fake)
    result = CliRunner().invoke(cli, ["fetch", "debian", "6.1.0-99-amd64"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: no linux-image-6.1.0-99-amd64-dbg in bookworm/bookworm-updates/bookworm-security"
    )
    assert result.stderr.count("\n") == 1

    result = CliRunner().invoke(cli, ["fetch", "debian", REL, "--mirror", fake.url + "/nothing-here"])
    assert result.exit_code == 1 and ("HTTP 404" in result.stderr or "has no suite" in result.stderr)


def test_fetch_list_shows_a_table(fake, cache):
    standard_archive(fake)
    CliRunner().invoke(cli, ["fetch", "debian", "cloud-amd64", "--no-config"])
    result = CliRunner().invoke(cli, ["fetch", "list", "debian", "--suite", "bookworm", "--arch", "amd64"])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["release", "arch", "flavor", "version", "size", "MB", "suite", "cached"]
    assert lines[1:] == [
        ["6.1.0-56-amd64", "amd64", "amd64", "6.1.192-2", "0", "bookworm-security"],
        ["6.1.0-56-cloud-amd64", "amd64", "cloud-amd64", "6.1.192-2", "0", "bookworm-security", "*"],
    ]
    assert "2 debug kernels in bookworm for amd64" in result.stderr


def test_build_through_the_debian_fetcher(fake, cache, elves, tmp_path):
    fake.add(f"linux-image-{REL}-dbg", "6.1.192-2", build_deb(dbg_entries(body=elves(41).read_bytes())))
    fake.add(
        "linux-image-6.1.0-56-arm64-dbg",
        "6.1.192-2",
        build_deb(dbg_entries("6.1.0-56-arm64", body=elves(42).read_bytes())),
        arch="arm64",
    )
    (tmp_path / "m.yml").write_text(
        "defaults:\n  suite: bookworm\n"
        "builds:\n  - id: x86\n    release: 6.1.0-56-amd64\n    version: 6.1.192-2\n"
        "  - id: arm\n    release: 6.1.0-56-arm64\n"
        "groups:\n  - name: Arch\n    kind: variants\n    members:\n      - x86: amd64\n      - arm: arm64\n"
    )
    db_path = tmp_path / "k.db"
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "m.yml"), "--db", str(db_path), "--prune"])
    assert result.exit_code == 0, result.output
    assert "fetched x86:" in result.stderr and "x86: pruned" in result.stderr
    assert not list((cache / "debian").glob("*/vmlinux"))  # --prune left no image behind
    assert not list((cache / "debian").glob("*/modules*"))  # nor modules
    conn = db.connect(db_path)
    try:
        assert conn.execute(
            "SELECT name, distro, version, release, arch, flavor FROM builds ORDER BY id"
        ).fetchall() == [
            ("6.1.0-56-amd64", "debian", "6.1.192-2", "6.1.0-56-amd64", "amd64", "amd64"),
            ("6.1.0-56-arm64", "debian", "6.1.192-2", "6.1.0-56-arm64", "arm64", "arm64"),
        ]
        assert builds.load_groups(conn) == [("Arch", "variants", [(1, "amd64"), (2, "arm64")])]
    finally:
        conn.close()

    fake.requests.clear()
    again = CliRunner().invoke(cli, ["build", str(tmp_path / "m.yml"), "--db", str(db_path)])
    assert again.exit_code == 0 and fake.requests == []  # all stored: not even an index request


def test_build_reports_a_pinned_version_the_archive_lacks(fake, cache, tmp_path):
    standard_archive(fake)
    spec = manifest.parse(
        "builds:\n  - id: a\n    release: 6.1.0-56-amd64\n    suite: bookworm\n    version: 6.1.180-1\n"
    )
    try:
        builder.build(spec, tmp_path / "k.db")
    except builder.BuildError as exc:
        assert exc.result.rows[0].error == (
            f"fetch: linux-image-{REL}-dbg: the archive (bookworm-security) offers version 6.1.192-2, "
            "the manifest pins 6.1.180-1; update or drop `version:`"
        )
    else:
        raise AssertionError("no BuildError")


def test_fetch_no_modules_then_fetch_completes_the_entry(fake, cache, kos):
    fake.add(f"linux-image-{REL}-dbg", "6.1.192-2", build_deb(modules_entries(kos)))
    key = cache / "debian" / f"linux-image-{REL}-dbg_6.1.192-2_amd64"
    first = CliRunner().invoke(cli, ["fetch", "debian", REL, "--no-config", "--no-modules"])
    assert first.exit_code == 0, first.output
    assert "modules:" not in first.stderr and not (key / "modules").exists()
    again = CliRunner().invoke(cli, ["fetch", "debian", REL, "--no-config"])
    assert again.exit_code == 0, again.output
    assert "downloaded" in again.stderr and f"modules: {key / 'modules'}" in again.stderr
    assert again.stdout == first.stdout and read_tree(key / "modules") == kos


def test_build_fetches_modules_unless_told_not_to(fake, cache, kos):
    fake.add(f"linux-image-{REL}-dbg", "6.1.192-2", build_deb(modules_entries(kos)))
    fetcher = builder.DebianFetcher(modules=False)
    spec = manifest.parse("builds:\n  - id: x86\n    release: 6.1.0-56-amd64\n    suite: bookworm\n")
    got = fetcher(spec.builds[0], None)
    assert got.modules is None and fetcher.is_cached(spec.builds[0])
    fetcher = builder.DebianFetcher()
    assert not fetcher.is_cached(spec.builds[0])  # an entry without modules is not complete for it
    got = fetcher(spec.builds[0], None)
    assert got.modules == cache / "debian" / f"linux-image-{REL}-dbg_6.1.192-2_amd64" / "modules"
    assert not got.cached and read_tree(got.modules) == kos and fetcher.is_cached(spec.builds[0])
    assert got.evict is not None and got.evict() > 0 and not got.modules.exists()
