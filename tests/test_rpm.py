"""`kernsurf fetch rpm`: real RPMs built here by rpmbuild (Debian package rpm)
around the compiled fixture program (as vmlinux) and a module-like .ko, with
xz, zstd and gzip payloads, indexed by createrepo_c (Debian package
createrepo-c) and served as a yum repository on loopback."""

from __future__ import annotations

import functools
import http.server
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from ingest.cli import cli
from tests.support.modules import build_modules
from tests.support.programs import compile_program
from tests.support.tools import build, require

pytest.importorskip("libarchive", reason="libarchive-c (the rpm extra) reads RPMs")

RELEASE = "6.8.5-301.fc40.x86_64"
SPEC = """\
%global debug_package %{{nil}}
%global __os_install_post %{{nil}}
%global _build_id_links none
%define _binary_payload {payload}
Name: {name}
Version: {version}
Release: {release}
Summary: Debug information for package kernel
License: GPL-2.0-only
%description
A kernsurf test fixture.
%install
d=%{{buildroot}}/usr/lib/debug/lib/modules/{kernel}
mkdir -p $d/kernel/net
{install}
%files
/usr/lib/debug/lib/modules/{kernel}
"""
#: rpm's payload setting per compression (`w<level>.<io>`).
PAYLOADS = {"xz": "w2.xzdio", "zstd": "w3.zstdio", "gzip": "w6.gzdio"}


def _rpm(tmp: Path, payload: str, version: str, release: str, files: dict[str, Path]) -> Path:
    """Build kernel-debuginfo-<version>-<release> holding `files` (name below the modules dir -> source)."""
    install = "\n".join(f"cp {src} $d/{name}" for name, src in files.items())
    kernel = f"{version}-{release}.x86_64"
    spec = tmp / f"{version}-{release}.spec"
    spec.write_text(
        SPEC.format(
            payload=PAYLOADS[payload],
            name="kernel-debuginfo",
            version=version,
            release=release,
            kernel=kernel,
            install=install,
        )
    )
    top = tmp / "top"
    build(["rpmbuild", "-bb", "--target", "x86_64", "--define", f"_topdir {top}", spec])
    return top / "RPMS" / "x86_64" / f"kernel-debuginfo-{version}-{release}.x86_64.rpm"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, object]:
    """A repository directory with one kernel-debuginfo per payload compression, plus one without vmlinux."""
    require("rpmbuild", "createrepo_c")
    tmp = tmp_path_factory.mktemp("rpm")
    program = compile_program(tmp / "p", "dwarf5")
    module = build_modules("amd64", tmp)["alpha"]
    repo = tmp / "repo" / "Packages"
    repo.mkdir(parents=True)
    versions = {"xz": "301.fc40", "zstd": "302.fc40", "gzip": "303.fc40"}
    for payload, release in versions.items():
        files = {"vmlinux": program, "kernel/net/alpha.ko.debug": module}
        shutil.copy(_rpm(tmp, payload, "6.8.5", release, files), repo)
    shutil.copy(_rpm(tmp, "zstd", "6.8.6", "100.fc40", {"kernel/net/alpha.ko.debug": module}), repo)
    build(["createrepo_c", "-q", repo.parent])
    return {"repo": repo.parent, "program": program.read_bytes(), "module": module.read_bytes()}


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate: set[str] = set()

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        if self.path in self.truncate:
            outputfile.write(source.read()[:5000])
            return
        super().copyfile(source, outputfile)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve(tmp_path, monkeypatch) -> Iterator[callable]:
    """serve(directory, truncate=()) -> URL of a yum repository on loopback."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    servers = []

    def start(directory: Path, truncate: tuple[str, ...] = ()) -> str:
        handler = type("H", (_Handler,), {"truncate": set(truncate)})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "xdg" / "kernsurf"


@pytest.mark.parametrize(("payload", "version"), [("xz", "301"), ("zstd", "302"), ("gzip", "303")])
def test_fetch_each_payload_then_ingest(tmp_path, built, serve, payload, version):
    url = serve(built["repo"])
    result = CliRunner().invoke(
        cli, ["fetch", "rpm", f"6.8.5-{version}.fc40.x86_64", "--repo", url, "--distro", "fedora"]
    )
    assert result.exit_code == 0, result.output
    key = _cache(tmp_path) / "fedora" / f"kernel-debuginfo_6.8.5-{version}.fc40_x86_64"
    assert result.stdout.strip() == str(key / "vmlinux")
    assert (key / "vmlinux").read_bytes() == built["program"]
    ko = zstandard.ZstdDecompressor().decompress((key / "modules/net/alpha.ko.zst").read_bytes())
    assert ko == built["module"]
    again = CliRunner().invoke(cli, ["fetch", "rpm", f"6.8.5-{version}.fc40", "--repo", url])
    assert (
        again.exit_code == 0 and "already in the cache" not in again.output
    )  # another distro: another entry
    db = tmp_path / "k.db"
    ingested = CliRunner().invoke(
        cli, ["ingest", str(key / "vmlinux"), "--db", str(db), "--distro", "fedora"]
    )
    assert ingested.exit_code == 0, ingested.output
    assert sqlite3.connect(db).execute("SELECT distro, n_modules FROM builds").fetchone() == ("fedora", 1)


def test_newest_by_name_and_unknown(tmp_path, built, serve):
    url = serve(built["repo"])
    missing = CliRunner().invoke(cli, ["fetch", "rpm", "9.9.9-1.fc40", "--repo", url])
    assert missing.exit_code == 1 and "newest there: kernel-debuginfo-6.8.6-100.fc40.x86_64" in missing.output


def test_a_package_without_vmlinux(tmp_path, built, serve):
    url = serve(built["repo"])
    result = CliRunner().invoke(cli, ["fetch", "rpm", "kernel-debuginfo", "--repo", url])  # the newest: 6.8.6
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error: ") and "has no vmlinux" in result.stderr
    assert not (_cache(tmp_path) / "rpm" / "kernel-debuginfo_6.8.6-100.fc40_x86_64").exists()


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("truncated", ("download stopped",)),
        # A corrupt zstd frame is caught by libarchive before the whole file's SHA256 is compared.
        ("checksum", ("not a readable RPM", "differs from the index's")),
        ("not_rpm", ("not a readable RPM", "differs from the index's")),
    ],
)
def test_bad_packages_are_one_line_and_leave_nothing(tmp_path, built, serve, damage, says):
    repo = tmp_path / "repo"
    shutil.copytree(built["repo"], repo)
    target = repo / "Packages" / "kernel-debuginfo-6.8.5-302.fc40.x86_64.rpm"
    data = bytearray(target.read_bytes())
    if damage == "checksum":  # one byte of the payload's compressed stream changed
        data[-200] ^= 0xFF
    elif damage == "not_rpm":  # same size, not an RPM at all
        data = bytearray(b"\0" * len(data))
    target.write_bytes(bytes(data))
    url = serve(repo, truncate=("/Packages/" + target.name,) if damage == "truncated" else ())
    result = CliRunner().invoke(cli, ["fetch", "rpm", "6.8.5-302.fc40", "--repo", url])
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: ") and any(s in last for s in says), result.stderr
    assert "Traceback" not in result.output
    entry = _cache(tmp_path) / "rpm" / "kernel-debuginfo_6.8.5-302.fc40_x86_64"
    assert not entry.exists()
    assert not list(_cache(tmp_path).rglob("*.part"))
