"""Kernel debug images from RPM repositories (`kernsurf fetch rpm`): Fedora,
CentOS Stream, AlmaLinux, Rocky, Amazon Linux, openSUSE.

A repository is found from its metadata: `<repo>/repodata/repomd.xml` names
the primary index (`primary.xml` compressed with gz, xz or zstd, checked
against repomd's sha256), whose `<package>` entries give each package's name,
version, arch, size, sha256 and location. The debug package is
`kernel-debuginfo` (or a flavor's: `kernel-64k-debuginfo`, `kernel-rt-debuginfo`,
openSUSE's `kernel-default-debuginfo`); its payload is a cpio archive
compressed with xz, zstd or gzip, holding
`/usr/lib/debug/lib/modules/<release>/vmlinux` (openSUSE:
`/usr/lib/debug/boot/vmlinux-<release>.debug`) and each module's
`kernel/**.ko.debug`.

The package is streamed once and never written to disk: libarchive (through
libarchive-c, the `rpm` extra) reads the RPM lead and headers and the cpio
payload as the bytes arrive, while the whole file is hashed and checked
against the index. The cache, its locks, the sidecar and the `.part` handling
are the Debian fetcher's (`store`): `<cache>/<distro>/<package>_<version>_<arch>/`.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import zstandard

from ingest.errors import ArchiveError, ChecksumMismatch, NoVmlinux, UnknownPackage

from . import store
from .index import write_atomic
from .modules import ModuleTree, remove_tree
from .net import HashingReader, Progress, open_url, read_url

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_REPO = "{http://linux.duke.edu/metadata/repo}"
_COMMON = "{http://linux.duke.edu/metadata/common}"
#: kernel-debuginfo, kernel-64k-debuginfo, kernel-default-debuginfo; not -debuginfo-common-*, tools.
_DEBUGINFO = re.compile(r"^kernel(?:-(?!tools|debuginfo)[a-z0-9]+)?-debuginfo$")
_VMLINUX = re.compile(r"^usr/lib/debug/(?:lib/modules/([^/]+)/vmlinux|boot/vmlinux-([^/]+)\.debug)$")
_MODULE = re.compile(r"^usr/lib/debug/lib/modules/[^/]+/kernel/(.+\.ko)(?:\.debug)?$")
_CHUNK = 1 << 20


class RpmFormatError(ArchiveError):
    """The package is not an RPM, or its payload is corrupt."""


def _reader() -> Any:
    """libarchive-c's module, or an ArchiveError saying how to install it."""
    try:
        import libarchive
    except (ImportError, OSError) as exc:
        raise ArchiveError(
            f"reading RPMs needs libarchive-c and libarchive ({exc}): pip install 'kernsurf[rpm]' "
            "and the system's libarchive (Debian: libarchive13)"
        ) from None
    return libarchive


# --------------------------------------------------------------------------- repository metadata


def _flavor(name: str) -> str:
    """kernel-64k-debuginfo -> 64k; kernel-debuginfo -> "" (the default kernel)."""
    return name.removeprefix("kernel").removesuffix("-debuginfo").strip("-")


def _decompress(data: bytes, href: str) -> bytes:
    try:
        if href.endswith(".gz"):
            return gzip.decompress(data)
        if href.endswith(".xz"):
            return lzma.decompress(data)
        if href.endswith(".zst"):
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError) as exc:
        raise RpmFormatError(f"{href}: corrupt ({exc})") from None
    return data


def _primary(repo: str) -> tuple[str, str]:
    """(URL, sha256) of the repository's primary index, from repodata/repomd.xml."""
    url = urljoin(repo + "/", "repodata/repomd.xml")
    text = read_url(url)
    assert text is not None
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise RpmFormatError(f"{url}: not repository metadata ({exc})") from None
    for data in root.iter(f"{_REPO}data"):
        if data.get("type") == "primary":
            location, checksum = data.find(f"{_REPO}location"), data.find(f"{_REPO}checksum")
            if location is not None and checksum is not None and checksum.get("type") == "sha256":
                return urljoin(repo + "/", location.get("href", "")), (checksum.text or "").strip()
    raise RpmFormatError(f"{url}: names no primary index with a sha256")


def debug_packages(
    repo: str, distro: str = "rpm", cache_dir: str | os.PathLike | None = None
) -> list[store.PackageRef]:
    """Every kernel debuginfo package of the repository at `repo`, newest last.

    The kernel entries of each primary index are kept in the cache by its sha256."""
    repo = repo.rstrip("/")
    url, sha = _primary(repo)
    entries = _cached_entries(url, sha, store.cache_root(cache_dir) / "index" / "rpm" / f"{sha}.json")
    refs = [
        store.PackageRef(
            name=e["name"],
            version=e["version"],
            arch=e["arch"],
            url=urljoin(repo + "/", e["href"]),
            size=e["size"],
            sha256=e["sha256"],
            release=f"{e['version']}.{e['arch']}" + (f"+{_flavor(e['name'])}" if _flavor(e["name"]) else ""),
            flavor=_flavor(e["name"]) or "default",
            suite=urlsplit(repo).path.strip("/"),
            base=repo,
            distro=distro,
        )
        for e in entries
    ]
    return sorted(refs, key=lambda r: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", r.version)])


def _cached_entries(url: str, sha: str, cached: Path) -> list[dict]:
    """The kernel entries of the primary index at `url` (sha256 `sha`), kept at `cached`."""
    try:
        return list(json.loads(cached.read_text()))
    except (OSError, ValueError):
        pass
    data = read_url(url)
    assert data is not None
    if hashlib.sha256(data).hexdigest() != sha:
        raise ChecksumMismatch(f"{url}: SHA256 differs from repomd.xml's; refresh the mirror and try again")
    entries = list(_kernel_entries(_decompress(data, url), url))
    write_atomic(cached, json.dumps(entries).encode())
    return entries


def _kernel_entries(xml: bytes, url: str) -> Iterator[dict]:
    """The kernel debuginfo <package> entries of a primary index."""
    try:
        for _, element in ET.iterparse(io.BytesIO(xml)):
            if element.tag != f"{_COMMON}package":
                continue
            name = element.findtext(f"{_COMMON}name") or ""
            if _DEBUGINFO.match(name):
                v = element.find(f"{_COMMON}version")
                checksum = element.find(f"{_COMMON}checksum")
                size = element.find(f"{_COMMON}size")
                location = element.find(f"{_COMMON}location")
                if v is None or checksum is None or size is None or location is None:
                    continue
                if checksum.get("type") != "sha256":
                    continue
                yield {
                    "name": name,
                    "version": f"{v.get('ver')}-{v.get('rel')}",
                    "arch": element.findtext(f"{_COMMON}arch") or "",
                    "size": int(size.get("package", "0")),
                    "sha256": (checksum.text or "").strip(),
                    "href": location.get("href", ""),
                }
            element.clear()
    except ET.ParseError as exc:
        raise RpmFormatError(f"{url}: not a primary index ({exc})") from None


def resolve(
    package_or_release: str,
    repo: str,
    arch: str | None = None,
    distro: str = "rpm",
    cache_dir: str | os.PathLike | None = None,
) -> store.PackageRef:
    """The debuginfo package for a package name (kernel-debuginfo: its newest),
    a file name, a version (6.8.5-301.fc40) or a release (6.8.5-301.fc40.x86_64)."""
    query = package_or_release.strip().removesuffix(".rpm")
    refs = [r for r in debug_packages(repo, distro, cache_dir) if arch is None or r.arch == arch]
    hits = [
        r
        for r in refs
        if query in (r.name, r.version, r.release, f"{r.name}-{r.version}", f"{r.name}-{r.version}.{r.arch}")
    ]
    if hits:
        return hits[-1]
    newest = ", ".join(f"{r.name}-{r.version}.{r.arch}" for r in refs[-5:][::-1]) or "none"
    raise UnknownPackage(f"no kernel debuginfo package {query!r} in {repo}; newest there: {newest}")


# --------------------------------------------------------------------------- the package


class _Feed(io.RawIOBase):
    """The HTTP stream as libarchive reads it: an error raised while reading
    (a broken download) is kept, and libarchive sees the end of its input."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self._raw = raw
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        if self.error is not None:
            return 0
        try:
            return self._raw.readinto(memoryview(b).cast("B")) or 0  # libarchive's buffer is of char
        except Exception as exc:  # raised again once libarchive returns
            self.error = exc
            return 0


class _Blocks(io.RawIOBase):
    """An archive entry's blocks as a file (for ModuleTree.add)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks, self._left = blocks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        while not self._left:
            self._left = next(self._blocks, b"")
            if not self._left:
                return 0
        view = memoryview(b)
        n = min(len(view), len(self._left))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def fetch(
    ref: store.PackageRef,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    *,
    modules: bool = True,
) -> store.FetchedImage:
    """Fetch `ref`'s vmlinux (and, with `modules`, its debug modules) into the cache."""
    directory = store.key_dir(ref, cache_dir)
    with store.key_lock(store.lock_path(ref, cache_dir)):
        hit = store.cached_image(ref, cache_dir)
        if hit is not None and (hit.modules_path is not None or not modules):
            return hit
        directory.mkdir(parents=True, exist_ok=True)
        for stale in (store.SIDECAR, "vmlinux", store.MODULES):
            remove_tree(directory / stale)
        store.clean_parts(directory)
        started = time.monotonic()
        tree = ModuleTree(directory / store.MODULES, ("kernel",)) if modules else None
        try:
            member, release, count = _stream(ref, directory / "vmlinux", tree, progress)
        except BaseException as exc:
            if tree is not None:
                tree.abort()
            store.clean_parts(directory)
            remove_tree(directory / "vmlinux")
            if not any(directory.iterdir()):
                directory.rmdir()
            if isinstance(exc, OSError) and store.is_disk_full(exc):
                raise store.disk_full(exc, directory) from None
            raise
        meta = {
            "package": ref.name,
            **dataclasses.asdict(ref),
            "member": member,
            "kernel_release": release,
            "vmlinux_size": (directory / "vmlinux").stat().st_size,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.monotonic() - started, 2),
        }
        if tree is not None:
            stats = tree.commit()
            meta["modules"] = {
                "status": "ok",
                "count": stats.files,
                "bytes": stats.bytes,
                "compressed": stats.compressed,
            }
        store.write_sidecar(directory, meta)
    return store.FetchedImage(
        directory / "vmlinux",
        ref,
        None,
        cached=False,
        downloaded=count,
        modules_path=store.modules_dir(directory),
    )


def _stream(
    ref: store.PackageRef, dest: Path, tree: ModuleTree | None, progress: Progress | None
) -> tuple[str, str, int]:
    """One pass over the package: its vmlinux to `dest` (through .part), its
    modules to `tree`, the whole file checked; (member, kernel release, bytes)."""
    libarchive = _reader()
    part = dest.with_name(dest.name + ".part")
    resp = open_url(ref.url)
    assert resp is not None
    reader = HashingReader(resp, ref.size, ref.url, progress)
    feed = _Feed(reader)
    found: tuple[str, str] | None = None
    with resp:
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != ref.size:
            raise ChecksumMismatch(f"{ref.url}: the server sends {length} bytes, the index says {ref.size}")
        try:
            with libarchive.stream_reader(feed, block_size=_CHUNK) as archive:
                for entry in archive:
                    path = entry.pathname.lstrip("./").lstrip("/")
                    if (m := _VMLINUX.match(path)) and entry.isreg and found is None:
                        with open(part, "wb") as out:
                            for block in entry.get_blocks():
                                out.write(block)
                        found = (path, m.group(1) or m.group(2))
                    elif tree is not None and entry.isreg and (mod := _MODULE.match(path)):
                        blocks = io.BufferedReader(_Blocks(iter(entry.get_blocks())), _CHUNK)
                        tree.add(f"kernel/{mod.group(1)}", blocks, entry.size)
        except libarchive.ArchiveError as exc:
            if feed.error is not None:
                raise feed.error from None
            raise RpmFormatError(f"{ref.url}: not a readable RPM ({exc})") from None
        if feed.error is not None:
            raise feed.error
        reader.drain()
    digest = reader.sha256.hexdigest()
    if digest != ref.sha256.lower():
        raise ChecksumMismatch(
            f"{ref.url}: SHA256 {digest} differs from the index's {ref.sha256}; fetch again"
        )
    if found is None:
        raise NoVmlinux(
            f"{ref.name} {ref.version} has no vmlinux below /usr/lib/debug; pick a kernel-debuginfo package"
        )
    os.replace(part, dest)
    return found[0], found[1], reader.count
