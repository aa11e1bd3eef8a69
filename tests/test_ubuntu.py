"""Ubuntu ddebs: `kernsurf fetch ubuntu`, `fetch list ubuntu` and `source: ubuntu`
manifests, against a ddebs mirror and a main archive served on loopback:
Packages.xz indexes plus .ddeb files built here around compiled images (the
fixture program as vmlinux, a module-like .ko), zstd members (21.10 on) and
xz members (before)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from ingest.archive import ubuntu
from ingest.catalog import manifest
from ingest.cli import cli
from tests.support.mirror import build_deb, serving
from tests.support.modules import build_modules
from tests.support.programs import compile_program

ROOT = Path(__file__).resolve().parent.parent
NOBLE = "6.8.0-31-generic"
FOCAL = "5.4.0-26-generic"
CONFIG = b"CONFIG_BPF_SYSCALL=y\nCONFIG_KPROBES=y\nCONFIG_DEBUG_INFO_BTF=y\n"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, bytes]:
    """Two different compiled images and one module."""
    tmp = tmp_path_factory.mktemp("ubuntu-images")
    modules = build_modules("amd64", tmp)
    return {
        "noble": compile_program(tmp / "a", "dwarf5").read_bytes(),
        "focal": compile_program(tmp / "b", "dwarf4").read_bytes(),
        "module": modules["alpha"].read_bytes(),
    }


def ddeb_entries(rel: str, vmlinux: bytes, module: bytes) -> list[tuple]:
    return [
        (f"usr/lib/debug/.build-id/ab/{rel}.debug", "->", f"../../boot/vmlinux-{rel}"),
        (f"usr/lib/debug/boot/vmlinux-{rel}", vmlinux),
        (f"usr/lib/debug/lib/modules/{rel}/kernel/net/alpha.ko", module),
        (f"usr/share/doc/linux-image-unsigned-{rel}-dbgsym/copyright", b"GPL-2\n"),
    ]


@pytest.fixture
def mirror(tmp_path, monkeypatch, images):
    """A ddebs mirror (/ddebs) and main archive (/ubuntu): noble (zstd) and focal (xz) kernels."""
    with serving() as fake:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        monkeypatch.setenv(ubuntu.ENV_DDEBS, fake.url + "/ddebs")
        monkeypatch.setenv(ubuntu.ENV_ARCHIVE, fake.url + "/ubuntu")
        for rel, suite, version, body, kind in (
            (NOBLE, "noble-updates", "6.8.0-31.31", images["noble"], "zst"),
            (FOCAL, "focal", "5.4.0-26.30", images["focal"], "xz"),
        ):
            fake.add(
                f"linux-image-unsigned-{rel}-dbgsym",
                version,
                build_deb(ddeb_entries(rel, body, images["module"]), kind),
                suite=suite,
                archive="ddebs",
            )
            fake.add(
                f"linux-modules-{rel}",
                version,
                build_deb([(f"boot/config-{rel}", CONFIG)], kind),
                suite=suite,
                archive="ubuntu",
            )
        fake.add(
            "linux-image-unsigned-6.8.0-1008-aws-dbgsym", "6.8.0-1008.8", b"x", suite="noble", archive="ddebs"
        )
        fake.add(
            "linux-image-unsigned-6.8.0-1009-aws-dbgsym",
            "6.8.0-1009.9",
            b"y",
            suite="noble-updates",
            archive="ddebs",
        )
        yield fake


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "xdg" / "kernsurf"


def test_fetch_zstd_ddeb_then_ingest(tmp_path, mirror, images):
    result = CliRunner().invoke(cli, ["fetch", "ubuntu", "6.8.0-31", "--suite", "noble"])
    assert result.exit_code == 0, result.output
    key = _cache(tmp_path) / "ubuntu" / f"linux-image-unsigned-{NOBLE}-dbgsym_6.8.0-31.31_amd64"
    assert result.stdout.strip() == str(key / "vmlinux")
    assert (key / "vmlinux").read_bytes() == images["noble"]
    assert (key / "config").read_bytes() == CONFIG
    ko = key / "modules" / "net" / "alpha.ko.zst"
    assert zstandard.ZstdDecompressor().decompress(ko.read_bytes()) == images["module"]
    db = tmp_path / "k.db"
    ingested = CliRunner().invoke(cli, ["ingest", str(key / "vmlinux"), "--db", str(db), "--release", NOBLE])
    assert ingested.exit_code == 0, ingested.output
    assert "3 config options, 1 modules" in ingested.output


def test_xz_ddeb_by_package_name(tmp_path, mirror, images):
    result = CliRunner().invoke(
        cli, ["fetch", "ubuntu", f"linux-image-unsigned-{FOCAL}-dbgsym", "--suite", "focal", "--no-modules"]
    )
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()).read_bytes() == images["focal"]


def test_flavors_and_listing(mirror):
    assert ubuntu.resolve("aws", "noble").release == "6.8.0-1009-aws"  # a flavor: its newest
    assert ubuntu.resolve("6.8.0-1008", "noble", flavor="aws").release == "6.8.0-1008-aws"
    result = CliRunner().invoke(cli, ["fetch", "list", "ubuntu", "--suite", "noble", "--arch", "amd64"])
    assert result.exit_code == 0, result.output
    rows = [line.split()[:3] for line in result.stdout.splitlines()[1:]]
    assert sorted(rows) == [
        ["6.8.0-1008-aws", "amd64", "aws"],
        ["6.8.0-1009-aws", "amd64", "aws"],
        ["6.8.0-31-generic", "amd64", "generic"],
    ]


def test_a_manifest_of_ubuntu_builds(tmp_path, mirror):
    (tmp_path / "m.yml").write_text(
        "defaults:\n  source: ubuntu\nbuilds:\n"
        f"  - id: focal\n    release: {FOCAL}\n    suite: focal\n"
        f"  - id: noble\n    package: linux-image-unsigned-{NOBLE}-dbgsym\n    suite: noble\n"
        "groups:\n  - name: Ubuntu\n    kind: series\n    members: [focal, noble]\n"
    )
    db = tmp_path / "k.db"
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "m.yml"), "--db", str(db), "-j", "1"])
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT distro, release, arch, flavor, n_modules FROM builds ORDER BY release"
    ).fetchall()
    assert rows == [("ubuntu", FOCAL, "amd64", "generic", 1), ("ubuntu", NOBLE, "amd64", "generic", 1)]
    assert conn.execute("SELECT count(*) FROM diff_pairs").fetchone() == (1,)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("member", "data member is not zstd-compressed"),
        ("checksum", "differs from the index's"),
        ("novmlinux", "has no vmlinux"),
        ("truncated", "download"),
    ],
)
def test_bad_ddebs_are_one_line_and_leave_nothing(tmp_path, mirror, images, damage, message):
    rel = "6.8.0-40-generic"
    entries = ddeb_entries(rel, images["noble"], images["module"])
    if damage == "novmlinux":
        entries = [e for e in entries if "boot/vmlinux" not in e[0] and ".build-id" not in e[0]]
    data = build_deb(entries, "zst")
    if damage == "member":  # a data.tar.zst whose bytes are xz (same-length ar member name)
        data = build_deb(entries, "xz").replace(b"data.tar.xz ", b"data.tar.zst")
    path = mirror.add(
        f"linux-image-unsigned-{rel}-dbgsym",
        "6.8.0-40.40",
        data,
        suite="noble",
        archive="ddebs",
        sha256=hashlib.sha256(b"other").hexdigest() if damage == "checksum" else None,
    )
    if damage == "truncated":
        mirror.truncate.add(path)
    result = CliRunner().invoke(cli, ["fetch", "ubuntu", rel, "--suite", "noble", "--no-config"])
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: ") and message in last, result.stderr
    key = _cache(tmp_path) / "ubuntu" / f"linux-image-unsigned-{rel}-dbgsym_6.8.0-40.40_amd64"
    assert not key.exists() or not any(key.iterdir())
    assert not list(_cache(tmp_path).rglob("*.part"))


def test_the_ubuntu_manifest_is_valid():
    loaded = manifest.load(ROOT / "manifests" / "ubuntu.yml")
    assert {b.source for b in loaded.builds} == {"ubuntu"}
    assert {b.arch for b in loaded.builds} >= {"amd64", "arm64", "armhf", "ppc64el", "riscv64"}
    assert {b.flavor for b in loaded.builds} >= {"generic", "aws", "azure", "gcp", "lowlatency"}
    releases = {b.release.split("-")[0] for b in loaded.builds}
    assert {"4.4.0", "6.8.0"} <= releases
