"""Fetching kernel debug images from a Debian-style archive.

Everything runs against .deb files and Packages.xz indexes built here and
served from a local http.server on 127.0.0.1 (tests/support/mirror.py); only tests marked `network`
talk to a real mirror (and skip when it is unreachable).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import lzma
import os
import tarfile
import threading
import urllib.request
from pathlib import Path

import pytest
import zstandard
from debian.debian_support import Version

from ingest import errors
from ingest.archive import deb, debian, index, sources, store, ubuntu
from ingest.archive import modules as archive_modules
from tests.support.mirror import (
    CONFIG,
    REL,
    REL7,
    VMLINUX,
    build_deb,
    dbg7_entries,
    dbg_entries,
    modules_entries,
    read_tree,
    standard_archive,
)

# --------------------------------------------------------------------------- deb.extract


@pytest.mark.parametrize("compression", ["xz", "gz", "zst"])
def test_extract_each_compression(tmp_path, compression):
    data = build_deb(dbg_entries(), compression)
    stream = io.BytesIO(data + b"trailing")
    member = deb.extract(stream, lambda p: p == f"usr/lib/debug/boot/vmlinux-{REL}", tmp_path / "v")
    assert member == f"usr/lib/debug/boot/vmlinux-{REL}"
    assert (tmp_path / "v").read_bytes() == VMLINUX
    assert stream.tell() <= len(data)  # never reads past the package
    assert sorted(os.listdir(tmp_path)) == ["v"]


@pytest.mark.parametrize("link_first", [True, False])
def test_extract_follows_symlink_either_order(tmp_path, link_first):
    """Only the link path is wanted; a target before its link is kept speculatively."""
    wanted = f"usr/lib/debug/boot/vmlinux-{REL7}"
    data = build_deb(dbg7_entries(link_first=link_first))
    member = deb.extract(
        io.BytesIO(data),
        lambda p: p == wanted,
        tmp_path / "v",
        maybe=lambda p: os.path.basename(p) == "vmlinux",
    )
    assert member == f"usr/lib/debug/lib/modules/{REL7}/vmlinux"
    assert (tmp_path / "v").read_bytes() == VMLINUX
    assert sorted(os.listdir(tmp_path)) == ["v"]  # no speculative leftovers


def test_extract_target_before_link_needs_maybe(tmp_path):
    wanted = f"usr/lib/debug/boot/vmlinux-{REL7}"
    with pytest.raises(errors.MemberNotFound):
        deb.extract(
            io.BytesIO(build_deb(dbg7_entries(link_first=False))), lambda p: p == wanted, tmp_path / "v"
        )
    assert os.listdir(tmp_path) == []


def test_extract_symlink_chain_and_hardlink(tmp_path):
    entries = [("a/first", "->", "second"), ("a/second", "->", "/b/real"), ("b/real", b"payload")]
    assert deb.extract(io.BytesIO(build_deb(entries)), lambda p: p == "a/first", tmp_path / "v") == "b/real"
    assert (tmp_path / "v").read_bytes() == b"payload"
    entries = [("b/real", b"payload2"), ("c/hard", "=>", "./b/real")]
    deb.extract(
        io.BytesIO(build_deb(entries)),
        lambda p: p == "c/hard",
        tmp_path / "w",
        maybe=lambda p: p.startswith("b/"),
    )
    assert (tmp_path / "w").read_bytes() == b"payload2"


def test_extract_rejects_garbage_and_truncation(tmp_path):
    with pytest.raises(errors.DebFormatError):
        deb.extract(io.BytesIO(b"<html>not a deb</html>"), lambda p: True, tmp_path / "v")
    data = build_deb(dbg_entries())
    with pytest.raises((errors.TruncatedDownload, errors.DebFormatError)):
        deb.extract(
            io.BytesIO(data[: len(data) // 2]), lambda p: p.endswith(f"vmlinux-{REL}"), tmp_path / "v"
        )
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- mirrors and names


def test_mirror_selection(tmp_path, monkeypatch):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://ftp.example/debian/ bookworm main\n"
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
    )
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: trixie\nEnabled: no\n"
    )
    monkeypatch.delenv("KERNSURF_DEBIAN_MIRROR", raising=False)
    assert sources.mirror_for(None, etc) == sources.Mirror(
        "http://ftp.example/debian", "http://sec.example/debian-security"
    )
    assert sources.mirror_for(None, tmp_path / "none") == sources.Mirror(
        "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
    )
    monkeypatch.setenv("KERNSURF_DEBIAN_MIRROR", "http://env.example/debian/")
    assert sources.mirror_for(None, etc).security == "http://env.example/debian-security"
    assert (
        sources.mirror_for("http://arg.example/mirror/debian", etc).main == "http://arg.example/mirror/debian"
    )


def test_release_names():
    assert debian.parse_release("6.1.0-56-amd64") == ("6.1.0-56", "amd64")
    assert debian.parse_release("6.1.0-0.deb11.48-cloud-amd64") == ("6.1.0-0.deb11.48", "cloud-amd64")
    assert debian.parse_release("6.12.115+deb13.1-rt-arm64") == ("6.12.115+deb13.1", "rt-arm64")
    assert debian.parse_release("6.1.0-56-686") == ("6.1.0-56", "686")
    assert debian.parse_release("6.1.0-56") is None
    assert debian.parse_release("6.12-amd64") is None  # meta package name
    assert debian.suite_group("bookworm") == ["bookworm", "bookworm-updates", "bookworm-security"]
    assert debian.suite_group("sid") == ["sid"]
    assert debian.suite_group("trixie-security") == ["trixie-security"]


# --------------------------------------------------------------------------- resolve / list


def test_resolve_by_package_release_and_flavor(fake, cache):
    standard_archive(fake)
    by_name = debian.resolve(f"linux-image-{REL}-dbg", "bookworm")
    assert (by_name.version, by_name.suite, by_name.release, by_name.flavor) == (
        "6.1.192-2",
        "bookworm-security",
        REL,
        "amd64",
    )
    assert (
        by_name.url
        == fake.url + "/debian-security/pool/main/l/linux/" + f"linux-image-{REL}-dbg_6.1.192-2_amd64.deb"
    )
    assert by_name.sha256 == hashlib.sha256(fake.files[urllib.request.urlparse(by_name.url).path]).hexdigest()
    assert debian.resolve(REL, "bookworm") == by_name
    assert debian.resolve("6.1.0-56", "bookworm", "amd64") == by_name
    assert debian.resolve("cloud-amd64", "bookworm").flavor == "cloud-amd64"
    assert debian.resolve("686-pae", "bookworm").name == "linux-image-6.1.0-56-686-pae-dbg"
    assert debian.resolve("6.1.0-56-arm64", "bookworm").arch == "arm64"  # arch from the flavor
    assert debian.resolve(REL, "bookworm-security") == by_name
    assert debian.resolve(REL, "bookworm", mirror=fake.main).version == "6.1.192-2"


def test_resolve_errors(fake, cache):
    standard_archive(fake)
    with pytest.raises(errors.UnknownPackage, match="close matches: linux-image-6.1.0-56-amd64-dbg"):
        debian.resolve("6.1.0-57-amd64", "bookworm")
    with pytest.raises(errors.UnknownArch, match="available: amd64, arm64"):
        debian.resolve("6.1.0-56", "bookworm", "s390x")
    with pytest.raises(errors.UnknownSuite):
        debian.resolve(REL, "bookwrom")
    with pytest.raises(errors.UnknownPackage, match="built for arm64"):
        debian.resolve("6.1.0-56-arm64", "bookworm", "amd64")


def test_list_skips_meta_packages(fake, cache):
    standard_archive(fake)
    refs = debian.list_debug_kernels("bookworm")
    assert [(r.arch, r.release, r.version) for r in refs] == [
        ("amd64", "6.1.0-56-amd64", "6.1.192-2"),
        ("amd64", "6.1.0-56-cloud-amd64", "6.1.192-2"),
        ("arm64", "6.1.0-56-arm64", "6.1.192-2"),
        ("i386", "6.1.0-56-686-pae", "6.1.192-2"),
    ]
    assert [r.flavor for r in debian.list_debug_kernels("bookworm", "arm64")] == ["arm64"]


def test_index_is_cached_and_revalidated(fake, cache):
    standard_archive(fake)
    debian.list_debug_kernels("bookworm", "amd64")
    n = len(fake.requests)
    debian.list_debug_kernels("bookworm", "amd64")
    assert len(fake.requests) == n  # fresh: no request at all
    debian.list_debug_kernels("bookworm", "amd64", max_age=0)  # stale: If-Modified-Since -> 304
    assert n == 3 and len(fake.requests) == 6 and all("Packages.xz" in r for r in fake.requests)
    assert list((cache / "index").rglob("*.part")) == []


# --------------------------------------------------------------------------- fetch


def test_fetch_extracts_vmlinux_and_config_without_storing_the_deb(fake, cache):
    standard_archive(fake)
    ref = debian.resolve(REL, "bookworm")
    seen_debs: list[Path] = []
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        for p in cache.rglob("*"):
            if p.is_file() and p.read_bytes()[:8] == b"!<arch>\n":
                seen_debs.append(p)

    image = debian.fetch(ref, progress=progress)
    key = cache / "debian" / f"linux-image-{REL}-dbg_6.1.192-2_amd64"
    assert image.path == key / "vmlinux" and image.path.read_bytes() == VMLINUX
    assert image.config_path == key / "config" and image.config_path.read_bytes() == CONFIG
    assert not image.cached and image.warnings == ()
    assert seen_debs == [] and calls and calls[-1][0] == calls[-1][1]
    assert sorted(p.name for p in key.iterdir()) == ["config", "modules", "vmlinux", "vmlinux.json"]
    meta = json.loads((key / "vmlinux.json").read_text())
    assert meta["package"] == ref.name and meta["sha256"] == ref.sha256 and meta["url"] == ref.url
    assert meta["release"] == REL and meta["flavor"] == "amd64" and meta["config"]["status"] == "ok"

    fake.requests.clear()
    again = debian.fetch(ref)
    assert again.cached and again.path == image.path and again.config_path == image.config_path
    assert fake.requests == []  # cache hit: no HTTP at all


def test_fetch_7x_layout_symlink_either_order(fake, cache):
    fake.add(f"linux-image-{REL7}-dbg", "7.0.1-1", build_deb(dbg7_entries(link_first=True)), suite="sid")
    fake.add(
        f"linux-base-{REL7}",
        "7.0.1-1",
        build_deb([(f"usr/lib/modules/{REL7}/config", CONFIG)]),
        suite="sid",
        installed_kb=900,
        section="kernel",
    )
    fake.add(
        f"linux-image-{REL7}", "7.0.1-1", build_deb([("usr/share/doc/x", b"")]), suite="sid", installed_kb=1
    )
    rel2 = "7.0.1+deb14-cloud-amd64"
    fake.add(
        f"linux-image-{rel2}-dbg", "7.0.1-1", build_deb(dbg7_entries(rel2, link_first=False)), suite="sid"
    )
    for rel in (REL7, rel2):
        image = debian.fetch(debian.resolve(rel, "sid"))
        assert image.path.read_bytes() == VMLINUX
        assert (
            json.loads(image.path.with_name("vmlinux.json").read_text())["member"]
            == f"usr/lib/debug/lib/modules/{rel}/vmlinux"
        )
    assert debian.fetch(debian.resolve(REL7, "sid")).config_path.read_bytes() == CONFIG
    assert image.config_path is None and any("no package with a kernel config" in w for w in image.warnings)


def test_checksum_mismatch_deletes_output(fake, cache):
    fake.add(f"linux-image-{REL}-dbg", "1", build_deb(dbg_entries()), sha256="0" * 64)
    ref = debian.resolve(REL, "bookworm")
    with pytest.raises(errors.ChecksumMismatch, match="differs from the index"):
        debian.fetch(ref, config=False)
    assert not (cache / "debian").exists() or list((cache / "debian").rglob("*")) == []


def test_size_mismatch_fails_before_download(fake, cache):
    path = fake.add(f"linux-image-{REL}-dbg", "1", build_deb(dbg_entries()))
    fake.files[path] += b"extra"
    with pytest.raises(errors.ChecksumMismatch, match="index says"):
        debian.fetch(debian.resolve(REL, "bookworm"), config=False)


def test_truncated_download_leaves_nothing(fake, cache):
    fake.truncate.add(fake.add(f"linux-image-{REL}-dbg", "1", build_deb(dbg_entries())))
    with pytest.raises(errors.TruncatedDownload, match="run the command again"):
        debian.fetch(debian.resolve(REL, "bookworm"), config=False)
    assert list((cache / "debian").rglob("*")) == []


def test_package_without_vmlinux(fake, cache):
    fake.add(f"linux-image-{REL}-dbg", "1", build_deb([("usr/share/doc/nothing", b"x")]))
    with pytest.raises(errors.NoVmlinux, match="has no vmlinux"):
        debian.fetch(debian.resolve(REL, "bookworm"), config=False)
    assert list((cache / "debian").rglob("*")) == []


def test_http_error_names_url_and_status(fake, cache):
    path = fake.add(f"linux-image-{REL}-dbg", "1", build_deb(dbg_entries()))
    ref = debian.resolve(REL, "bookworm")
    del fake.files[path]
    with pytest.raises(errors.MirrorError) as info:
        debian.fetch(ref, config=False)
    assert info.value.status == 404 and info.value.url == ref.url and "HTTP 404" in str(info.value)
    with pytest.raises(errors.MirrorError, match="unreachable"):
        debian.list_debug_kernels("bookworm", mirror="http://127.0.0.1:9/debian", cache_dir=cache / "other")


def test_disk_full_is_a_domain_error(fake, cache, monkeypatch):
    fake.add(f"linux-image-{REL}-dbg", "1", build_deb(dbg_entries()))

    def full(src, out, progress):
        out.write(src.read(1000))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(deb, "_copy", full)
    with pytest.raises(errors.DiskFull, match="free some space"):
        debian.fetch(debian.resolve(REL, "bookworm"), config=False)
    assert list((cache / "debian").rglob("*")) == []


def test_leftover_part_is_removed_and_missing_sidecar_refetches(fake, cache):
    standard_archive(fake)
    ref = debian.resolve(REL, "bookworm")
    key = store.key_dir(ref)
    key.mkdir(parents=True)
    (key / "vmlinux.part").write_bytes(b"half")
    (key / "vmlinux").write_bytes(b"stale, no sidecar")
    assert store.cached_image(ref) is None
    image = debian.fetch(ref)
    assert image.path.read_bytes() == VMLINUX and not image.cached
    assert sorted(p.name for p in key.iterdir()) == ["config", "modules", "vmlinux", "vmlinux.json"]


def test_config_over_limit_is_a_warning(fake, cache):
    standard_archive(fake)
    image = debian.fetch(debian.resolve(REL, "bookworm"), config_limit=100)
    assert image.path.read_bytes() == VMLINUX and image.config_path is None
    assert len(image.warnings) == 1 and "over the 100 B limit" in image.warnings[0]
    fake.requests.clear()
    again = debian.fetch(debian.resolve(REL, "bookworm"), config_limit=100)
    assert again.cached and fake.deb_requests() == []  # not retried under the same limit
    third = debian.fetch(debian.resolve(REL, "bookworm"))
    assert third.cached and third.config_path.read_bytes() == CONFIG


def test_config_error_is_a_warning_and_retried(fake, cache):
    standard_archive(fake)
    config_deb = next(p for p in fake.files if p.endswith(f"linux-image-{REL}-unsigned_6.1.192-2_amd64.deb"))
    saved = fake.files.pop(config_deb)
    image = debian.fetch(debian.resolve(REL, "bookworm"))
    assert image.path.read_bytes() == VMLINUX and image.config_path is None
    assert len(image.warnings) == 1 and "HTTP 404" in image.warnings[0]
    fake.files[config_deb] = saved
    again = debian.fetch(debian.resolve(REL, "bookworm"))
    assert again.cached and again.config_path.read_bytes() == CONFIG


def test_ubuntu_same_shape(fake, cache):
    rel = "6.8.0-31-generic"
    fake.add(
        f"linux-image-unsigned-{rel}-dbgsym",
        "6.8.0-31.31",
        build_deb(dbg_entries(rel), "zst"),
        suite="noble-updates",
        archive="ddebs",
    )
    fake.add(
        f"linux-modules-{rel}",
        "6.8.0-31.31",
        build_deb([(f"boot/config-{rel}", CONFIG)]),
        suite="noble-updates",
        archive="ubuntu",
    )
    fake.add(
        "linux-image-unsigned-6.8.0-30-generic-dbgsym", "6.8.0-30.30", b"x", suite="noble", archive="ddebs"
    )
    ref = ubuntu.resolve("6.8.0-31", "noble", mirror=fake.url + "/ddebs")
    assert (ref.release, ref.flavor, ref.suite, ref.distro) == (rel, "generic", "noble-updates", "ubuntu")
    assert [r.release for r in ubuntu.list_debug_kernels("noble", "amd64", mirror=fake.url + "/ddebs")] == [
        "6.8.0-30-generic",
        rel,
    ]
    image = ubuntu.fetch(ref, archive=fake.url + "/ubuntu")
    assert image.path == cache / "ubuntu" / f"{ref.name}_6.8.0-31.31_amd64" / "vmlinux"
    assert image.path.read_bytes() == VMLINUX and image.config_path.read_bytes() == CONFIG
    with pytest.raises(errors.UnknownPackage, match="newest there"):
        ubuntu.resolve("6.8.0-99-generic", "noble", mirror=fake.url + "/ddebs")


def test_parallel_fetches_of_one_key_download_once(fake, cache):
    path = fake.add(f"linux-image-{REL}-dbg", "1", build_deb(dbg_entries()))
    fake.slow.add(path)
    ref = debian.resolve(REL, "bookworm")
    results: list[store.FetchedImage] = []
    threads = [
        threading.Thread(target=lambda: results.append(debian.fetch(ref, config=False))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 3 and fake.deb_requests() == [path]
    assert sum(not r.cached for r in results) == 1
    assert all(r.path.read_bytes() == VMLINUX for r in results)


def test_parallel_fetches_of_different_keys_overlap(fake, cache):
    """Both downloads must be in flight at once for the barrier in the server to open."""
    a = fake.add(f"linux-image-{REL}-dbg", "1", build_deb(dbg_entries()))
    b = fake.add("linux-image-6.1.0-56-cloud-amd64-dbg", "1", build_deb(dbg_entries("6.1.0-56-cloud-amd64")))
    gate = threading.Barrier(2, timeout=5)
    fake.barrier = {a: gate, b: gate}
    refs = [debian.resolve(REL, "bookworm"), debian.resolve("6.1.0-56-cloud-amd64", "bookworm")]
    out: list = []
    threads = [threading.Thread(target=lambda r=r: out.append(debian.fetch(r, config=False))) for r in refs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(out) == 2 and not gate.broken


# --------------------------------------------------------------------------- the real mirror


@pytest.mark.network
def test_real_mirror_resolves_bookworm_security(tmp_path):
    mirror = sources.mirror_for(None)
    try:
        urllib.request.urlopen(f"{mirror.security}/dists/bookworm-security/Release", timeout=5).close()
    except OSError as exc:
        pytest.skip(f"mirror unreachable: {exc}")
    # the security suite alone: a 0.4 MB index instead of bookworm's 9 MB
    ref = debian.resolve(
        "linux-image-6.1.0-56-amd64-dbg", "bookworm-security", mirror=mirror, cache_dir=tmp_path
    )
    assert ref.suite == "bookworm-security" and ref.release == "6.1.0-56-amd64" and ref.flavor == "amd64"
    assert ref.size > 100_000_000 and len(ref.sha256) == 64 and ref.url.endswith(".deb")


# --------------------------------------------------------------------------- modules


def test_fetch_keeps_every_module_compressed_in_one_pass(fake, cache, kos):
    path = fake.add(f"linux-image-{REL}-dbg", "6.1.192-2", build_deb(modules_entries(kos)))
    image = debian.fetch(debian.resolve(REL, "bookworm"), config=False)
    key = cache / "debian" / f"linux-image-{REL}-dbg_6.1.192-2_amd64"
    assert fake.deb_requests() == [path]  # the package streamed once for vmlinux and modules
    assert image.path.read_bytes() == VMLINUX
    assert image.modules_path == key / "modules" == store.modules_dir(image.path) == store.modules_dir(key)
    assert read_tree(key / "modules") == kos  # exact bytes, paths below kernel/ kept, nothing else
    meta = json.loads((key / "vmlinux.json").read_text())["modules"]
    assert meta["status"] == "ok" and meta["count"] == 4
    assert meta["bytes"] == sum(map(len, kos.values()))
    assert meta["compressed"] == sum(p.stat().st_size for p in (key / "modules").rglob("*.zst"))
    assert meta["roots"] == sorted(debian.module_roots(REL))
    assert sorted(p.name for p in key.iterdir()) == ["modules", "vmlinux", "vmlinux.json"]  # no .part left

    fake.requests.clear()
    again = debian.fetch(debian.resolve(REL, "bookworm"), config=False)
    assert again.cached and again.modules_path == key / "modules" and fake.requests == []


def test_no_modules_keeps_none_and_a_later_fetch_completes_the_entry(fake, cache, kos):
    path = fake.add(f"linux-image-{REL}-dbg", "6.1.192-2", build_deb(modules_entries(kos)))
    ref = debian.resolve(REL, "bookworm")
    image = debian.fetch(ref, config=False, modules=False)
    key = store.key_dir(ref)
    assert image.modules_path is None and store.modules_dir(image.path) is None
    assert sorted(p.name for p in key.iterdir()) == ["vmlinux", "vmlinux.json"]
    assert "modules" not in json.loads((key / "vmlinux.json").read_text())  # as an entry made before modules
    vmlinux_stat = image.path.stat()

    assert debian.fetch(ref, config=False, modules=False).cached  # --no-modules: a hit, nothing downloaded
    fake.requests.clear()
    done = debian.fetch(ref, config=False)
    assert fake.deb_requests() == [path] and not done.cached and done.downloaded == ref.size
    assert done.modules_path == key / "modules" and read_tree(key / "modules") == kos
    assert (image.path.stat().st_ino, image.path.stat().st_mtime_ns) == (
        vmlinux_stat.st_ino,
        vmlinux_stat.st_mtime_ns,
    )  # the vmlinux was not rewritten
    meta = json.loads((key / "vmlinux.json").read_text())
    assert meta["modules"]["count"] == 4 and meta["sha256"] == ref.sha256
    assert debian.fetch(ref, config=False, modules=False).modules_path == key / "modules"  # kept


def test_failed_completion_keeps_the_vmlinux_entry(fake, cache, kos):
    path = fake.add(f"linux-image-{REL}-dbg", "6.1.192-2", build_deb(modules_entries(kos)))
    ref = debian.resolve(REL, "bookworm")
    debian.fetch(ref, config=False, modules=False)
    fake.truncate.add(path)
    with pytest.raises(errors.TruncatedDownload):
        debian.fetch(ref, config=False)
    key = store.key_dir(ref)
    assert sorted(p.name for p in key.iterdir()) == ["vmlinux", "vmlinux.json"]  # no modules.part
    assert store.cached_image(ref) is not None and store.modules_dir(key) is None


def test_modules_disk_full_is_a_domain_error(fake, cache, kos, monkeypatch):
    fake.add(f"linux-image-{REL}-dbg", "1", build_deb(modules_entries(kos)))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archive_modules, "open", full, raising=False)  # the compressor's output files
    with pytest.raises(errors.DiskFull, match="free some space"):
        debian.fetch(debian.resolve(REL, "bookworm"), config=False)
    assert list((cache / "debian").rglob("*")) == []


def test_evict_deletes_vmlinux_and_modules(fake, cache, kos):
    fake.add(f"linux-image-{REL}-dbg", "6.1.192-2", build_deb(modules_entries(kos)))
    ref = debian.resolve(REL, "bookworm")
    image = debian.fetch(ref, config=False)
    key = store.key_dir(ref)
    size = sum(p.stat().st_size for p in key.rglob("*") if p.is_file())
    assert image.modules_path is not None and store.evict(ref) == size
    assert not key.exists() and store.cached_image(ref) is None


def test_module_paths():
    roots = debian.module_roots(REL)
    assert archive_modules.relative_path(f"{roots[0]}/fs/ext4/ext4.ko", roots) == "fs/ext4/ext4.ko"
    assert archive_modules.relative_path(f"{roots[1]}/net/x.ko", roots) == "net/x.ko"  # merged /usr (7.x)
    assert archive_modules.relative_path(f"{roots[0]}/fs/ext4/ext4.ko.xz", roots) is None
    assert archive_modules.relative_path(f"{roots[0]}/../evil.ko", roots) is None
    assert archive_modules.relative_path(f"usr/lib/debug/lib/modules/{REL}/extra/a.ko", roots) is None


@pytest.mark.network
def test_real_udeb_modules_stream_into_the_tree(tmp_path):
    """A real Debian package with real modules (the installer's ext4-modules udeb, ~0.4 MB, not the 1 GB -dbg)."""
    mirror = sources.mirror_for(None)
    index_url = f"{mirror.main}/dists/bookworm/main/debian-installer/binary-amd64/Packages.xz"
    try:
        urllib.request.urlopen(f"{mirror.main}/dists/bookworm/Release", timeout=5).close()
        stanzas = index.load_packages(index_url, tmp_path / "Packages.xz", prefixes=("ext4-modules-",))
    except (OSError, errors.MirrorError) as exc:
        pytest.skip(f"mirror unreachable: {exc}")
    stanza = max(
        (s for s in stanzas if s["Package"].endswith("-amd64-di")), key=lambda s: Version(s["Version"])
    )
    rel = stanza["Package"].removeprefix("ext4-modules-").removesuffix("-di")
    ref = store.PackageRef(
        name=stanza["Package"],
        version=stanza["Version"],
        arch="amd64",
        url=f"{mirror.main}/{stanza['Filename']}",
        size=int(stanza["Size"]),
        sha256=stanza["SHA256"],
        release=rel,
        flavor="amd64",
    )
    root = f"lib/modules/{rel}/kernel"
    tree = archive_modules.ModuleTree(tmp_path / "modules", (root,))
    got = store.fetch_member(ref, None, None, modules=tree)
    assert got.downloaded == ref.size and got.modules is not None
    # oracle: the same package read a second time, whole, with tarfile
    data = urllib.request.urlopen(ref.url, timeout=30).read()
    payload = io.BytesIO(data)
    size, kind = deb.data_member(payload)
    raw = {"xz": lzma.decompress, "zst": zstandard.ZstdDecompressor().decompressobj().decompress}[kind](
        payload.read(size)
    )
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        expected = {
            deb._norm(m.name).removeprefix(root + "/"): tar.extractfile(m).read()
            for m in tar
            if m.isfile() and deb._norm(m.name).startswith(root + "/") and m.name.endswith(".ko")
        }
    assert "fs/ext4/ext4.ko" in expected
    assert read_tree(tmp_path / "modules") == expected
    assert got.modules.files == len(expected) and got.modules.bytes == sum(map(len, expected.values()))
    assert all(blob[:4] == b"\x7fELF" and blob[16] == 1 for blob in expected.values())  # ET_REL
