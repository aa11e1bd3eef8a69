"""Stream one file out of a .deb without keeping the .deb.

A .deb is an `ar` archive whose `data.tar.{xz,zst,gz}` member holds the files.
We read the ar headers ourselves (60 bytes each) so the input can be a
non-seekable HTTP response, decompress the data member on the fly and stop as
soon as the wanted file has been written. The caller may keep reading the raw
stream afterwards (e.g. to hash the rest of the package): we never read past
what decompression needed.
"""

from __future__ import annotations

import io
import lzma
import os
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from ingest.errors import DebFormatError, MemberNotFound, TruncatedDownload

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["extract", "data_member", "DebFormatError", "MemberNotFound"]

AR_MAGIC = b"!<arch>\n"
_RAW_CHUNK = 1 << 18  # compressed bytes read at a time
_MAX_OUT = 1 << 22  # decompressed bytes produced at a time (bounds memory)
_MAX_LINK_HOPS = 40


class _Decompressed(io.RawIOBase):
    """A read-only stream that decompresses `size` bytes of `raw` on the fly."""

    def __init__(self, raw: BinaryIO, size: int, kind: str):
        self._raw, self._left, self._kind = raw, size, kind
        # lzma, zlib or zstandard: three decompressor types, each driven its own way in _more()
        self._dec: Any
        if kind == "xz":
            self._dec = lzma.LZMADecompressor()
        elif kind == "gz":
            self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif kind == "zst":
            import zstandard

            self._dec = zstandard.ZstdDecompressor().decompressobj()
        else:
            raise DebFormatError(
                f"unsupported data member compression {kind!r}; only xz, zst and gz are handled"
            )
        self._buf, self._pos = b"", 0

    def readable(self) -> bool:
        return True

    def _input(self) -> bytes:
        if self._left <= 0:
            return b""
        chunk = self._raw.read(min(_RAW_CHUNK, self._left))
        if not chunk:
            raise TruncatedDownload("package data ended early; download it again")
        self._left -= len(chunk)
        return chunk

    def _more(self) -> bytes:
        """Next piece of decompressed output; b"" at the end of the member."""
        while True:
            if self._kind == "xz":
                if self._dec.eof:
                    return b""
                data = self._input() if self._dec.needs_input else b""
                if not data and self._dec.needs_input:
                    return b""
                out = self._dec.decompress(data, _MAX_OUT)
            elif self._kind == "gz":
                data = self._dec.unconsumed_tail or self._input()
                if not data:
                    return self._dec.flush()
                out = self._dec.decompress(data, _MAX_OUT)
            else:
                data = self._input()
                if not data:
                    return b""
                try:
                    out = self._dec.decompress(data)
                except Exception as exc:  # zstandard.ZstdError: the member is not what its name says
                    raise DebFormatError(
                        f"data member is not zstd-compressed ({exc}); download it again"
                    ) from None
            if out:
                return out

    def readinto(self, b: WriteableBuffer) -> int:
        if self._pos >= len(self._buf):
            self._buf, self._pos = self._more(), 0
        view = memoryview(b)
        n = min(len(view), len(self._buf) - self._pos)
        view[:n] = memoryview(self._buf)[self._pos : self._pos + n]
        self._pos += n
        return n


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise TruncatedDownload("package ended early; download it again")
        data += chunk
    return data


def _skip(stream: BinaryIO, n: int) -> None:
    while n > 0:
        chunk = stream.read(min(n, 1 << 20))
        if not chunk:
            raise TruncatedDownload("package ended early; download it again")
        n -= len(chunk)


def data_member(stream: BinaryIO) -> tuple[int, str]:
    """Advance `stream` to the start of data.tar.*; return (size, compression)."""
    magic = stream.read(8)
    if magic != AR_MAGIC:
        raise DebFormatError("not a Debian package (no ar header); check the URL or mirror")
    while True:
        header = stream.read(60)
        if not header:
            raise DebFormatError("package has no data.tar member; it is not a binary package")
        if len(header) < 60:
            header += _read_exact(stream, 60 - len(header))
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebFormatError("corrupt ar header in package; download it again") from None
        if name.startswith("data.tar"):
            return size, name.rsplit(".", 1)[-1]
        _skip(stream, size + (size & 1))


def _norm(path: str) -> str:
    """Archive path without leading './' or '/' ('' for the root)."""
    path = os.path.normpath("/" + path).lstrip("/")
    return "" if path == "." else path


def _copy(src: IO[bytes], out: BinaryIO, progress: Callable[[int], None] | None) -> None:
    while chunk := src.read(1 << 20):
        out.write(chunk)
        if progress:
            progress(len(chunk))


def extract(
    stream: BinaryIO,
    wanted: Callable[[str], bool] | None,
    dest: Path | None,
    progress: Callable[[int], None] | None = None,
    maybe: Callable[[str], bool] | None = None,
    *,
    keep: Callable[[str], bool] | None = None,
    visit: Callable[[str, IO[bytes], int], None] | None = None,
) -> str:
    """Write the first regular file whose path satisfies `wanted` to `dest`.

    Paths are given to `wanted` without a leading './' or '/'. Symlinks and
    hard links matching `wanted` are followed inside the archive, whichever
    order they come in: a link seen before its target marks the target as
    wanted; a target that comes *before* its link can only be recovered if it
    satisfied `maybe`, in which case it was extracted speculatively and is
    promoted when the link shows up (speculative copies are deleted otherwise).
    Returns the member path of the file written. Writes through a temporary
    `.part` name and renames at the end, so an interruption leaves nothing at
    `dest`.

    With `keep` and `visit`, every other regular file satisfying `keep` is
    given to `visit(path, stream, size)` and the whole data member is read;
    `wanted` may then be None (nothing written to `dest`, returns "").
    """
    size, kind = data_member(stream)
    tar = tarfile.open(
        fileobj=io.BufferedReader(_Decompressed(stream, size, kind), 1 << 20), mode="r|", bufsize=1 << 20
    )
    scan = _Scan(tar, dest, progress, maybe, keep, visit)
    try:
        for member in tar:
            path = _norm(member.name)
            if scan.found or wanted is None:
                scan.hand_over(member, path)
            elif member.issym() or member.islnk():
                scan.link(member, path, wanted(path))
            elif member.isfile():
                scan.file(member, path, wanted(path))
            if scan.found and visit is None:
                return scan.found
        if scan.found or wanted is None:
            return scan.found
        raise MemberNotFound("no matching file in the package")
    except (tarfile.TarError, lzma.LZMAError, zlib.error, EOFError) as exc:
        raise DebFormatError(f"corrupt package data ({exc}); download it again") from exc
    finally:
        for leftover in scan.spec.values():
            leftover.unlink(missing_ok=True)


class _Scan:
    """extract()'s pass over the data member: the links seen, the targets
    wanted through them, the speculative copies, and the file found."""

    def __init__(
        self,
        tar: tarfile.TarFile,
        dest: Path | None,
        progress: Callable[[int], None] | None,
        maybe: Callable[[str], bool] | None,
        keep: Callable[[str], bool] | None,
        visit: Callable[[str, IO[bytes], int], None] | None,
    ) -> None:
        self.tar, self.progress, self.maybe, self.keep, self.visit = tar, progress, maybe, keep, visit
        self.links: dict[str, str] = {}  # every link seen so far: path -> normalised target
        self.targets: set[str] = set()  # paths a wanted link points to, not seen yet
        self.spec: dict[str, Path] = {}  # speculatively extracted files: path -> temp file
        self.dest = dest or Path(".unused")  # only written to when a file is wanted
        self.tmp = self.dest.with_name(self.dest.name + ".part")
        self.found = ""

    def resolve(self, path: str) -> str:
        """Where a chain of links starting at `path` ends (at most _MAX_LINK_HOPS)."""
        for _ in range(_MAX_LINK_HOPS):
            if path not in self.links:
                break
            path = self.links[path]
        return path

    def write(self, member: tarfile.TarInfo, to: Path) -> None:
        """Copy `member` to `to` (nothing left there on failure)."""
        src = self.tar.extractfile(member)
        assert src is not None
        try:
            with open(to, "wb") as out:
                _copy(src, out, self.progress)
        except BaseException:
            to.unlink(missing_ok=True)
            raise

    def hand_over(self, member: tarfile.TarInfo, path: str) -> None:
        """A regular file satisfying `keep`: given to `visit`."""
        if member.isfile() and self.keep is not None and self.visit is not None and self.keep(path):
            src = self.tar.extractfile(member)
            assert src is not None
            self.visit(path, src, member.size)

    def link(self, member: tarfile.TarInfo, path: str, wanted: bool) -> None:
        """A symlink or hard link: remembered; when wanted (or leading to a wanted
        path), its target is wanted, found already if it was copied speculatively."""
        base = os.path.dirname(path) if member.issym() else ""
        self.links[path] = _norm(os.path.join(base, member.linkname))
        if wanted or path in self.targets:
            target = self.resolve(path)
            if target in self.spec:
                os.replace(self.spec.pop(target), self.dest)
                self.found = target
            self.targets.add(target)

    def file(self, member: tarfile.TarInfo, path: str, wanted: bool) -> None:
        """A regular file: written to `dest` when wanted, else handed over, else
        copied speculatively when it may be a link's target."""
        if wanted or path in self.targets:
            self.write(member, self.tmp)
            os.replace(self.tmp, self.dest)
            self.found = path
        elif self.keep is not None and self.visit is not None and self.keep(path):
            self.hand_over(member, path)
        elif self.maybe is not None and self.maybe(path):
            self.spec[path] = self.dest.with_name(f"{self.dest.name}.spec{len(self.spec)}.part")
            self.write(member, self.spec[path])
