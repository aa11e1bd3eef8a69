"""Stream one file out of a .deb without keeping the .deb.

A .deb is an `ar` archive whose `data.tar.{xz,zst,gz}` member holds the files.
We read the ar headers ourselves (60 bytes each) so the input can be a
non-seekable HTTP response, decompress the data member on the fly and stop as
soon as the wanted file has been written.
"""
from __future__ import annotations

import io
import lzma
import os
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

AR_MAGIC = b"!<arch>\n"


class DebFormatError(Exception):
    """The stream is not a Debian binary package."""


class MemberNotFound(Exception):
    """The package does not contain the wanted file."""


class _Decompressed(io.RawIOBase):
    """A read-only stream that decompresses `size` bytes of `raw` on the fly."""

    def __init__(self, raw: BinaryIO, size: int, kind: str):
        self._raw, self._left = raw, size
        if kind == "xz":
            self._dec = lzma.LZMADecompressor()
        elif kind == "gz":
            self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif kind == "zst":
            import zstandard

            self._dec = zstandard.ZstdDecompressor().decompressobj()
        else:
            raise DebFormatError(f"unsupported data member compression: {kind}")
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf and self._left > 0:
            chunk = self._raw.read(min(1 << 20, self._left))
            if not chunk:
                raise DebFormatError("package is truncated")
            self._left -= len(chunk)
            self._buf = self._dec.decompress(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise DebFormatError("package is truncated")
        data += chunk
    return data


def _skip(stream: BinaryIO, n: int) -> None:
    while n > 0:
        chunk = stream.read(min(n, 1 << 20))
        if not chunk:
            raise DebFormatError("package is truncated")
        n -= len(chunk)


def data_member(stream: BinaryIO) -> tuple[int, str]:
    """Advance `stream` to the start of data.tar.*; return (size, compression)."""
    if stream.read(8) != AR_MAGIC:
        raise DebFormatError("not a Debian package (no ar header)")
    while True:
        header = stream.read(60)
        if len(header) < 60:
            raise DebFormatError("package has no data.tar member")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        if name.startswith("data.tar"):
            return size, name.rsplit(".", 1)[-1]
        _skip(stream, size + (size & 1))


def extract(
    stream: BinaryIO,
    wanted: Callable[[str], bool],
    dest: Path,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Write the first regular file whose path satisfies `wanted` to `dest`.

    Symlinks matching `wanted` are followed to their target inside the same
    archive (7.x kernels put vmlinux behind one). Returns the member path.
    Writes to `dest` with a temporary name and renames at the end, so an
    interrupted extraction leaves nothing at `dest`.
    """
    size, kind = data_member(stream)
    tar = tarfile.open(fileobj=io.BufferedReader(_Decompressed(stream, size, kind), 1 << 20), mode="r|")
    targets: set[str] = set()
    for member in tar:
        path = member.name.lstrip("./")
        if member.issym() and wanted(path):
            targets.add(os.path.normpath(os.path.join(os.path.dirname(path), member.linkname)).lstrip("/"))
            continue
        if not member.isfile() or not (wanted(path) or path in targets):
            continue
        tmp = dest.with_name(dest.name + ".part")
        src = tar.extractfile(member)
        assert src is not None
        with open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
                if progress:
                    progress(len(chunk))
        os.replace(tmp, dest)
        return path
    raise MemberNotFound("no matching file in the package")
