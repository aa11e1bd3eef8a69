"""A fake Debian archive: .deb files and Packages.xz indexes built here, served
by an http.server on 127.0.0.1 (tests/test_archive.py, tests/test_fetch_cli.py)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import zstandard

from tests.support.tools import build

# --------------------------------------------------------------------------- building packages


def ar_archive(members: list[tuple[str, bytes]]) -> bytes:
    """A minimal `ar` archive as dpkg-deb writes it."""
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def tar_bytes(entries: list[tuple], compression: str = "xz") -> bytes:
    """A compressed tar of (path, bytes) files, (path, "->", target) symlinks, (path, "=>", target) hard links."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        seen_dirs: set[str] = {"."}
        for entry in entries:
            path = entry[0]
            parts = path.split("/")
            for i in range(1, len(parts)):
                d = "./" + "/".join(parts[:i])
                if d not in seen_dirs:
                    seen_dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo("./" + path)
            if len(entry) == 3:
                info.type = tarfile.SYMTYPE if entry[1] == "->" else tarfile.LNKTYPE
                info.linkname = entry[2]
                tar.addfile(info)
            else:
                info.size, info.mode = len(entry[1]), 0o644
                tar.addfile(info, io.BytesIO(entry[1]))
    data = raw.getvalue()
    if compression == "xz":
        return lzma.compress(data, preset=0)
    if compression == "gz":
        return gzip.compress(data, compresslevel=1)
    return zstandard.ZstdCompressor(level=1).compress(data)


def build_deb(entries: list[tuple], compression: str = "xz") -> bytes:
    return _build_deb(tuple(entries), compression)


@functools.cache
def _build_deb(entries: tuple[tuple, ...], compression: str) -> bytes:
    control = tar_bytes([("control", b"Package: test\n")])
    return ar_archive(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", control),
            (f"data.tar.{compression}", tar_bytes(entries, compression)),
        ]
    )


REL = "6.1.0-56-amd64"
REL7 = "7.0.1+deb14-amd64"
VMLINUX = os.urandom(300_000) + b"\x7fELF-not-really" * 4096
KO = os.urandom(20_000)
CONFIG = b"CONFIG_BPF=y\nCONFIG_DEBUG_INFO_BTF=y\n"


def dbg_entries(rel: str = REL, body: bytes = VMLINUX) -> list[tuple]:
    return [
        ("usr/lib/debug/.build-id/ab/cdef.debug", "->", f"../../boot/vmlinux-{rel}"),
        (f"usr/lib/debug/lib/modules/{rel}/kernel/fs/ext4.ko", KO),
        (f"usr/lib/debug/boot/vmlinux-{rel}", body),
        (f"usr/share/doc/linux-image-{rel}-dbg/copyright", b"GPL-2\n"),
    ]


def dbg7_entries(rel: str = REL7, link_first: bool = True) -> list[tuple]:
    link = (f"usr/lib/debug/boot/vmlinux-{rel}", "->", f"../lib/modules/{rel}/vmlinux")
    target = (f"usr/lib/debug/lib/modules/{rel}/vmlinux", VMLINUX)
    pad = (f"usr/lib/debug/lib/modules/{rel}/kernel/a.ko", b"x" * 1000)
    return [link, pad, target] if link_first else [pad, target, link]


# --------------------------------------------------------------------------- a fake mirror


@dataclass
class FakeMirror:
    """An in-memory archive with /debian and /debian-security, served over HTTP."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    stanzas: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    truncate: set[str] = field(default_factory=set)
    slow: set[str] = field(default_factory=set)
    barrier: dict[str, threading.Barrier] = field(default_factory=dict)
    last_modified: float = time.time() - 3600

    @property
    def main(self) -> str:
        return self.url + "/debian"

    def add(
        self,
        name: str,
        version: str,
        data: bytes,
        *,
        suite: str = "bookworm",
        arch: str = "amd64",
        installed_kb: int = 5_000_000,
        sha256: str | None = None,
        section: str = "debug",
        archive: str | None = None,
    ) -> str:
        """Publish a package; returns its URL path."""
        archive = archive or ("debian-security" if suite.endswith("-security") else "debian")
        filename = f"pool/main/l/linux/{name}_{version}_{arch}.deb"
        self.files[f"/{archive}/{filename}"] = data
        self.stanzas.setdefault((archive, suite, arch), []).append(
            f"Package: {name}\nSource: linux\nVersion: {version}\nInstalled-Size: {installed_kb}\n"
            f"Architecture: {arch}\nSection: {section}\nFilename: {filename}\nSize: {len(data)}\n"
            f"SHA256: {sha256 or hashlib.sha256(data).hexdigest()}\n"
        )
        self.publish()
        return f"/{archive}/{filename}"

    def publish(self) -> None:
        for (archive, suite, arch), stanzas in self.stanzas.items():
            text = "\n".join(stanzas).encode()
            self.files[f"/{archive}/dists/{suite}/main/binary-{arch}/Packages.xz"] = lzma.compress(text)
        for archive, suite in {(r, s) for r, s, _ in self.stanzas}:
            arches = sorted({a for r, s, a in self.stanzas if s == suite and r == archive})
            self.files[f"/{archive}/dists/{suite}/Release"] = (
                f"Suite: {suite}\nArchitectures: all {' '.join(arches)}\n".encode()
            )

    def deb_requests(self) -> list[str]:
        return [r for r in self.requests if r.endswith(".deb")]


def _handler(fake: FakeMirror):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            fake.requests.append(self.path)
            data = fake.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            if self.path in fake.barrier:
                fake.barrier[self.path].wait()
            if self.headers.get("If-Modified-Since") and self.path.endswith("Packages.xz"):
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Last-Modified", formatdate(fake.last_modified, usegmt=True))
            self.end_headers()
            if self.path in fake.truncate:
                data = data[: len(data) // 2]
            step = 1 << 16
            for i in range(0, len(data), step):
                self.wfile.write(data[i : i + step])
                if self.path in fake.slow:
                    time.sleep(0.005)

    return Handler


def standard_archive(fake: FakeMirror) -> None:
    """bookworm with an older 6.1.0-56 in main and the current one in -security, plus config packages."""
    fake.add(f"linux-image-{REL}-dbg", "6.1.190-1", build_deb(dbg_entries(body=b"old")))
    fake.add(f"linux-image-{REL}-dbg", "6.1.192-2", build_deb(dbg_entries()), suite="bookworm-security")
    fake.add(
        f"linux-image-{REL}-unsigned",
        "6.1.192-2",
        build_deb([(f"boot/config-{REL}", CONFIG), (f"boot/vmlinuz-{REL}", KO)]),
        suite="bookworm-security",
        installed_kb=400_000,
        section="kernel",
    )
    fake.add(
        "linux-image-6.1.0-56-cloud-amd64-dbg",
        "6.1.192-2",
        build_deb(dbg_entries("6.1.0-56-cloud-amd64")),
        suite="bookworm-security",
    )
    for meta in ("linux-image-amd64-dbg", "linux-image-6.1-amd64-dbg"):  # meta-packages: no image
        fake.add(meta, "6.1.192-2", build_deb([("usr/share/doc/x", b"")]), installed_kb=10, section="kernel")
    fake.add(
        "linux-image-6.1.0-56-arm64-dbg", "6.1.192-2", build_deb(dbg_entries("6.1.0-56-arm64")), arch="arm64"
    )
    fake.add(
        "linux-image-6.1.0-56-686-pae-dbg",
        "6.1.192-2",
        build_deb(dbg_entries("6.1.0-56-686-pae")),
        arch="i386",
    )


MODULE_SOURCES = {
    "fs/ext4/ext4.ko": "int ext4_file_write_iter(int x) { return x * 3; }\nstatic int helper(int y) { return y; }\n"
    "int ext4_sync(int z) { return helper(z) + 1; }\n",
    "drivers/md/md-mod.ko": "struct bio { int n; };\nint md_flush_request(struct bio *b) { return b->n; }\n",
    "net/ipv4/tcp_bbr.ko": 'static const char name[] = "bbr";\nconst char *bbr_name(void) { return name; }\n',
}


def compile_kos(work: Path) -> dict[str, bytes]:
    """Module-like ELF relocatable objects (gcc -c -g -O2) of MODULE_SOURCES, by path below .../kernel/."""
    out: dict[str, bytes] = {}
    for i, (rel, source) in enumerate(MODULE_SOURCES.items()):
        (work / f"m{i}.c").write_text(source)
        build(["gcc", "-c", "-g", "-O2", f"m{i}.c", "-o", f"m{i}.o"], cwd=work)
        out[rel] = (work / f"m{i}.o").read_bytes()
    # one module larger than the compressor's chunk, so it streams in several pieces
    out["drivers/gpu/big.ko"] = out["fs/ext4/ext4.ko"] + os.urandom(3 << 20)
    return out


def modules_entries(kos: dict[str, bytes], rel: str = REL) -> list[tuple]:
    """A -dbg package with modules before and after the vmlinux, and files that are not modules."""
    root = f"usr/lib/debug/lib/modules/{rel}"
    items = sorted(kos.items())
    return [
        ("usr/lib/debug/.build-id/12/3456.debug", "->", f"../../lib/modules/{rel}/kernel/{items[0][0]}"),
        *[(f"{root}/kernel/{path}", data) for path, data in items[:2]],
        (f"usr/lib/debug/boot/vmlinux-{rel}", VMLINUX),
        *[(f"{root}/kernel/{path}", data) for path, data in items[2:]],
        (f"{root}/kernel/fs/ext4/notes.txt", b"not a module"),
        (f"{root}/extra/outside.ko", b"not below kernel/"),
        (f"{root}/kernel/fs/link.ko", "->", "ext4/ext4.ko"),
    ]


def read_tree(tree: Path) -> dict[str, bytes]:
    """Every .ko.zst below `tree`, decompressed, by path without .zst."""
    dctx = zstandard.ZstdDecompressor()
    out = {}
    for path in sorted(tree.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            params = zstandard.get_frame_parameters(data)
            raw = dctx.decompress(data)
            assert params.content_size == len(raw) and params.has_checksum
            out[str(path.relative_to(tree)).removesuffix(".zst")] = raw
    return out


@contextmanager
def serving() -> Iterator[FakeMirror]:
    """An empty FakeMirror served on a free loopback port until the block ends."""
    mirror = FakeMirror()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror))
    server.daemon_threads = True
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
