"""The published artefact of a database (`kernsurf publish`) and the rule of
who can read it (`kernsurf pull`, ingest.publish.pull).

A publication is a directory of four files:

- DB (the source's file name): a copy of the database with its search index
  built, `VACUUM`ed (compact, rollback journal: no -wal file to ship) -- the
  source is only read;
- DB.zst: that copy zstd-compressed, the file to download;
- DB-stem.inspect.json: `datasette inspect` of the copy (its table counts), so
  that `kernsurf serve` serves a pulled database at once, without writing to it;
- manifest.json, written last (its presence means the other files are whole):
  `Manifest` -- the artefact format, the database's schema version, the
  builds, and each file's size and sha256.

A reader reads a publication when its artefact `format` is at most FORMAT and
its `schema_version` at most this kernsurf's `db.SCHEMA_VERSION` (`refusal`):
older schemas are read as they are and upgraded by the next `kernsurf ingest`
or `build` on them. Only the `builds` table and SQLite's own facilities
(VACUUM INTO, the search index of ingest.web.serve) are used, so the
artefact does not depend on how the facts are stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from ingest.db.connection import readonly_uri
from ingest.errors import BadArtefact, NoDatabase, PublishError
from ingest.queries import builds as q

#: Version of the artefact's layout (the manifest's keys, zstd for the download); a reader refuses newer.
FORMAT = 1
MANIFEST = "manifest.json"
#: Bytes read or written at a time: compression and downloads stream in bounded memory.
CHUNK = 1 << 20
#: zstd level of DB.zst. The 62 MB database of 6.1.0-56 amd64 (vmlinux alone), on 2 busy cores:
#: level 3 22.0 MB in 1.9 s, 10 19.1 MB in 9.8 s, 19 16.9 MB in 125 s; long-distance matching saves 1 %.
DEFAULT_LEVEL = 10
#: The columns of `builds` the manifest lists, when the database has them.
BUILD_COLUMNS = ("name", "build_id", "distro", "version", "release", "arch", "flavor", "n_modules")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a publication: its name in the directory, size in bytes, sha256 (hex)."""

    file: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """manifest.json of a publication, field by field."""

    format: int  # FORMAT of the kernsurf that published it
    schema_version: int  # db.SCHEMA_VERSION of the database
    kernsurf: str  # the publishing kernsurf's version
    published_at: str  # UTC, ISO 8601
    database: FileEntry  # the uncompressed database
    compressed: FileEntry  # DB.zst, the download
    compression: str  # "zstd"
    builds: list[dict[str, Any]] = field(default_factory=list)  # BUILD_COLUMNS of each build
    inspect: FileEntry | None = None  # DB-stem.inspect.json for `kernsurf serve`

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def parse(cls, text: str | bytes, where: str) -> Manifest:
        """The manifest in `text`; BadArtefact naming `where` when it is not one."""
        try:
            raw = json.loads(text)
            return cls(
                format=int(raw["format"]),
                schema_version=int(raw["schema_version"]),
                kernsurf=str(raw.get("kernsurf", "?")),
                published_at=str(raw.get("published_at", "")),
                database=FileEntry(**raw["database"]),
                compressed=FileEntry(**raw["compressed"]),
                compression=str(raw["compression"]),
                builds=list(raw.get("builds", [])),
                inspect=FileEntry(**raw["inspect"]) if raw.get("inspect") else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadArtefact(
                f"{where}: not a kernsurf manifest ({exc.__class__.__name__}: {exc}); "
                "give the URL of a manifest.json that `kernsurf publish` wrote, or of its directory"
            ) from None


def kernsurf_version() -> str:
    """The installed kernsurf's version ("unknown" in a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("kernsurf")
    except metadata.PackageNotFoundError:
        return "unknown"


def refusal(manifest: Manifest, where: str) -> str | None:
    """Why this kernsurf cannot read the publication (one line saying what to do), or None."""
    from ingest.db import SCHEMA_VERSION

    mine = f"this kernsurf ({kernsurf_version()})"
    if manifest.format > FORMAT:
        return (
            f"{where}: published in artefact format {manifest.format}; {mine} reads format {FORMAT} "
            "and older: upgrade kernsurf (pip install -U kernsurf)"
        )
    if manifest.schema_version > SCHEMA_VERSION:
        return (
            f"{where}: the database has schema {manifest.schema_version}, newer than the {SCHEMA_VERSION} "
            f"{mine} reads: upgrade kernsurf (pip install -U kernsurf) or pull a matching publication"
        )
    if manifest.compression != "zstd":
        return (
            f"{where}: compressed with {manifest.compression!r}, which {mine} cannot read: upgrade kernsurf"
        )
    return None


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True, slots=True)
class Publication:
    """What `publish` wrote: the directory, its manifest, the search index size and the seconds taken."""

    directory: Path
    manifest: Manifest
    names: int
    seconds: float


def publish(
    db_path: Path,
    out_dir: Path,
    level: int = DEFAULT_LEVEL,
    report: Callable[[str], None] = lambda line: None,
) -> Publication:
    """Write the publication of `db_path` into `out_dir` (created; its files replaced).
    The source database is only read."""
    from ingest import db
    from ingest.web import serve

    if not db_path.is_file():
        raise NoDatabase(
            f"{db_path}: no such database (build one with `kernsurf build` or `kernsurf ingest`)"
        )
    start = time.perf_counter()
    final = out_dir / db_path.name
    if final.resolve() == db_path.resolve():
        raise PublishError(f"{out_dir}: holds {db_path} itself; publish into another directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / f".{db_path.name}.work"
    for stale in (out_dir / MANIFEST, work):  # an old manifest would describe replaced files
        stale.unlink(missing_ok=True)
    try:
        report(f"copying {db_path}")
        vacuum_into(db_path, work)
        report("building the search index")
        names = serve.search_index(work)  # opening it for writing upgrades an older schema, in the copy
        conn = db.open_readonly(work)
        try:
            builds = q.build_records(conn, BUILD_COLUMNS)
            schema = q.schema_version(conn) or 1
        finally:
            conn.close()
        report(f"compacting into {final}")
        final.unlink(missing_ok=True)
        vacuum_into(work, final)
    finally:
        for path in (work, work.with_name(work.name + "-wal"), work.with_name(work.name + "-shm")):
            path.unlink(missing_ok=True)
    report(f"table counts for `kernsurf serve` into {serve.inspect_path(final).name}")
    with serve.served_as(final) as served:
        serve.write_inspect(served, serve.inspect_path(final))
    report(f"compressing into {final.name}.zst")
    database, compressed = _compress(final, out_dir / f"{final.name}.zst", level)
    manifest = Manifest(
        format=FORMAT,
        schema_version=schema,
        kernsurf=kernsurf_version(),
        published_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        database=database,
        compressed=compressed,
        compression="zstd",
        builds=builds,
        inspect=_entry(serve.inspect_path(final)),
    )
    write_atomically(out_dir / MANIFEST, manifest.as_json().encode())
    return Publication(out_dir, manifest, names, time.perf_counter() - start)


def vacuum_into(source: Path, dest: Path) -> None:
    """A compact copy of `source` at `dest`, read through a read-only connection."""
    conn = sqlite3.connect(readonly_uri(source), uri=True, isolation_level=None)
    try:
        conn.execute("VACUUM INTO ?", (str(dest),))
    except sqlite3.Error as exc:
        raise NoDatabase(f"{source}: not a kernsurf database ({exc})") from None
    finally:
        conn.close()


def _compress(source: Path, dest: Path, level: int) -> tuple[FileEntry, FileEntry]:
    """zstd-compress `source` into `dest` in CHUNK-sized pieces; the entries of both files."""
    plain, packed = hashlib.sha256(), hashlib.sha256()
    size, packed_size = 0, 0
    compressor = zstandard.ZstdCompressor(level=level, threads=-1).compressobj(size=source.stat().st_size)
    tmp = dest.with_name(dest.name + ".tmp")
    with open(source, "rb") as f, open(tmp, "wb") as out:

        def emit(data: bytes) -> None:
            nonlocal packed_size
            packed.update(data)
            packed_size += len(data)
            out.write(data)

        for chunk in _chunks(f):
            plain.update(chunk)
            size += len(chunk)
            emit(compressor.compress(chunk))
        emit(compressor.flush())
    os.replace(tmp, dest)
    return FileEntry(source.name, size, plain.hexdigest()), FileEntry(
        dest.name, packed_size, packed.hexdigest()
    )


def _entry(path: Path) -> FileEntry:
    return FileEntry(path.name, path.stat().st_size, sha256_of(path))


def _chunks(f: BinaryIO) -> Iterable[bytes]:
    while chunk := f.read(CHUNK):
        yield chunk


def sha256_of(path: Path) -> str:
    """The sha256 (hex) of a file, read in CHUNK-sized pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in _chunks(f):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """`data` as the file at `path`, renamed into place (a reader sees the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
