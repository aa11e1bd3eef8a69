"""A package's kernel modules, kept in the cache compressed with zstd.

While a -dbg package streams past, every `<root>/**.ko` (root: the package's
`.../lib/modules/<release>/kernel`) is compressed into
`<entry>/modules.part/<path below root>.zst` by a worker thread, so that the
package's decompression (in the caller's thread) and zstd use both cores.
Memory stays bounded: at most `_QUEUE` chunks of `_CHUNK` bytes wait between
the two. `commit` renames `modules.part` to `modules` once the package has
been verified; `abort` deletes it.
"""

from __future__ import annotations

import queue
import shutil
import threading
from pathlib import Path
from typing import IO, NamedTuple

import zstandard

LEVEL = 3
SUFFIX = ".zst"
_CHUNK = 1 << 20
_QUEUE = 16  # chunks in flight between the reader and the compressor


class ModuleStats(NamedTuple):
    """What a module tree holds: files, bytes before and after compression."""

    files: int
    bytes: int
    compressed: int


class _Open(NamedTuple):
    rel: str
    size: int


_CLOSE = object()  # end of the current file
_STOP = object()  # end of the stream


def relative_path(path: str, roots: tuple[str, ...]) -> str | None:
    """`path` below the first of `roots` holding it, if it is a `.ko` there (else None)."""
    if not path.endswith(".ko"):
        return None
    for root in roots:
        prefix = root.strip("/") + "/"
        if path.startswith(prefix):
            rel = path[len(prefix) :]
            return rel if rel and ".." not in rel.split("/") else None
    return None


def remove_tree(path: Path) -> int:
    """Delete a directory tree (or a file); returns the bytes freed."""
    if not path.is_dir():
        try:
            size = path.stat().st_size
            path.unlink()
            return size
        except OSError:
            return 0
    freed = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    shutil.rmtree(path, ignore_errors=True)
    return freed


class ModuleTree:
    """Writes the modules of one package under `dest` (through `dest.part`)."""

    def __init__(self, dest: Path, roots: tuple[str, ...], level: int = LEVEL) -> None:
        self.dest, self.roots = dest, roots
        self.part = dest.with_name(dest.name + ".part")
        remove_tree(self.part)
        self.part.mkdir(parents=True)
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._queue: queue.Queue[object] = queue.Queue(_QUEUE)
        self._error: BaseException | None = None
        self._count = self._bytes = self._compressed = 0
        self._seen: set[str] = set()
        self._worker = threading.Thread(target=self._run, name="zstd-modules", daemon=True)
        self._worker.start()

    def wants(self, path: str) -> bool:
        """Whether the archive member `path` is a module to keep."""
        rel = relative_path(path, self.roots)
        return rel is not None and rel not in self._seen

    def add(self, path: str, src: IO[bytes], size: int) -> None:
        """Queue the module read from `src` (`size` bytes) for compression."""
        rel = relative_path(path, self.roots)
        assert rel is not None
        self._seen.add(rel)
        self._put(_Open(rel, size))
        while chunk := src.read(_CHUNK):
            self._put(chunk)
        self._put(_CLOSE)

    def finish(self) -> ModuleStats:
        """Wait for the compressor; raise what it raised."""
        if self._worker.is_alive():
            self._put(_STOP)
            self._worker.join()
        if self._error is not None:
            raise self._error
        return ModuleStats(self._count, self._bytes, self._compressed)

    def commit(self) -> ModuleStats:
        """Finish, then move the tree to `dest` (replacing an older one)."""
        stats = self.finish()
        remove_tree(self.dest)
        self.part.rename(self.dest)
        return stats

    def abort(self) -> None:
        """Stop the compressor and delete what was written."""
        if self._worker.is_alive():
            self._error = self._error or _Aborted()
            self._put(_STOP, check=False)
            self._worker.join()
        remove_tree(self.part)

    def _put(self, item: object, check: bool = True) -> None:
        if check and self._error is not None:
            raise self._error
        while True:
            try:
                self._queue.put(item, timeout=1.0)
                return
            except queue.Full:
                if not self._worker.is_alive():
                    return

    def _run(self) -> None:
        out: IO[bytes] | None = None
        writer: zstandard.ZstdCompressionWriter | None = None
        while (item := self._queue.get()) is not _STOP:
            if self._error is not None:
                continue  # drain, so the reader never blocks
            try:
                if isinstance(item, _Open):
                    target = self.part / (item.rel + SUFFIX)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    out = open(target, "wb")
                    writer = self._cctx.stream_writer(out, size=item.size, closefd=False)
                    self._count += 1
                    self._bytes += item.size
                elif item is _CLOSE:
                    assert writer is not None and out is not None
                    writer.close()
                    self._compressed += out.tell()
                    out.close()
                    writer = out = None
                else:
                    assert writer is not None and isinstance(item, bytes)
                    writer.write(item)
            except BaseException as exc:  # re-raised in the reader's thread
                self._error = exc
        if out is not None:
            out.close()


class _Aborted(Exception):
    """The reader stopped before the end of the package."""
