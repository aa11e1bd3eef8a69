"""Downloading a published database (`kernsurf pull URL`): the manifest
first, which this kernsurf must be able to read (ingest.publish.artefact.refusal),
then the zstd file into DB.<sha>.zst.part beside the database -- resumed with an
HTTP Range request when an earlier transfer was cut off -- checked against the
manifest's size and sha256, then decompressed into a temporary file, checked
again, and renamed over DB. A failure at any point leaves DB as it was: never
a partial database.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import zstandard

from ingest.db.connection import readonly_uri
from ingest.errors import BadArtefact, CorruptDownload, DatabaseExists, PublishError, UnreadableFormat
from ingest.publish.artefact import (
    CHUNK,
    MANIFEST,
    Manifest,
    refusal,
    sha256_of,
    write_atomically,
)
from ingest.queries import builds as q
from ingest.web import serve

#: Transfers tried per pull before giving up; each resumes where the previous one stopped.
ATTEMPTS = 3
TIMEOUT = 60.0

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Pulled:
    """What `pull` did: the manifest, whether DB was already that database, bytes downloaded, resumed from."""

    manifest: Manifest
    up_to_date: bool
    downloaded: int
    resumed_from: int


def manifest_url(url: str) -> str:
    """The manifest's URL: `url` itself when it names a .json file, else manifest.json inside it.
    A local path (no scheme) becomes a file: URL."""
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    return url if url.split("?", 1)[0].endswith(".json") else url.rstrip("/") + "/" + MANIFEST


def read_manifest(url: str) -> tuple[str, Manifest]:
    """The manifest's URL and the manifest, refused (UnreadableFormat) when this kernsurf cannot read it."""
    where = manifest_url(url)
    try:
        with urllib.request.urlopen(where, timeout=TIMEOUT) as response:
            text = response.read()
    except urllib.error.HTTPError as exc:
        raise BadArtefact(
            f"{where}: HTTP {exc.code} {exc.reason}; is it a `kernsurf publish` directory?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise PublishError(f"{where}: unreachable ({_reason(exc)}); check the URL and the network") from None
    manifest = Manifest.parse(text, where)
    why = refusal(manifest, where)
    if why is not None:
        raise UnreadableFormat(why)
    return where, manifest


def pull(url: str, db_path: Path, replace: bool = False, progress: Progress | None = None) -> Pulled:
    """Make `db_path` the database published at `url` (its manifest.json, or the directory holding it)."""
    where, manifest = read_manifest(url)
    if db_path.exists():
        if (
            db_path.stat().st_size == manifest.database.size
            and sha256_of(db_path) == manifest.database.sha256
        ):
            inspect = _inspect_file(where, manifest) if serve.stale(db_path) else None
            if inspect is not None:  # else serving it would write the search index into it
                write_atomically(serve.inspect_path(db_path), inspect)
            return Pulled(manifest, True, 0, 0)
        if not replace:
            raise DatabaseExists(
                f"{db_path} exists and is not the database published at {where}: "
                "give --replace to overwrite it, or another --db"
            )
    entry = manifest.compressed
    db_path.parent.mkdir(parents=True, exist_ok=True)
    part = db_path.with_name(f"{db_path.name}.{entry.sha256[:12]}.zst.part")
    for stale in db_path.parent.glob(f"{db_path.name}.*.zst.part"):
        if stale != part:
            stale.unlink()
    resumed = part.stat().st_size if part.exists() else 0
    downloaded = _download(urljoin(where, entry.file), part, entry.size, progress)
    if part.stat().st_size != entry.size or sha256_of(part) != entry.sha256:
        part.unlink()
        raise CorruptDownload(
            f"{urljoin(where, entry.file)}: the download does not match the manifest's sha256 "
            "(corrupt in transit, or republished meanwhile); it was deleted: run pull again"
        )
    inspect = _inspect_file(where, manifest)
    try:
        _install(part, db_path, manifest, where)
    except CorruptDownload:  # the part matches the manifest: downloading it again would not help
        part.unlink()
        raise
    part.unlink()
    if inspect is not None:  # newer than the database: `kernsurf serve` serves it as it is
        write_atomically(serve.inspect_path(db_path), inspect)
    return Pulled(manifest, False, downloaded, resumed)


def _inspect_file(where: str, manifest: Manifest) -> bytes | None:
    """The publication's table counts for `kernsurf serve`, checked (None if it has none)."""
    entry = manifest.inspect
    if entry is None:
        return None
    url = urljoin(where, entry.file)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            data = response.read(entry.size + 1)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise PublishError(f"{url}: unreachable ({_reason(exc)}); run pull again") from None
    if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise CorruptDownload(f"{url}: does not match the manifest's sha256; run pull again")
    return data


def _download(url: str, part: Path, size: int, progress: Progress | None) -> int:
    """Complete `part` to `size` bytes from `url` in up to ATTEMPTS transfers, each
    resuming with a Range request; the bytes received."""
    received = 0
    for attempt in range(1, ATTEMPTS + 1):
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        if have == size:
            return received
        try:
            received += _transfer(url, part, have, size, progress)
        except (OSError, http.client.HTTPException) as exc:  # cut off: resume in the next attempt
            if attempt == ATTEMPTS:
                got = part.stat().st_size if part.exists() else 0
                raise CorruptDownload(
                    f"{url}: transfer cut off at {got} of {size} bytes ({_reason(exc)}); "
                    f"run pull again to resume from {part.name}"
                ) from None
    return received


def _transfer(url: str, part: Path, have: int, size: int, progress: Progress | None) -> int:
    """One HTTP transfer appending to `part` from byte `have`; restarts from 0 when the
    server ignores the Range. The bytes received; OSError when cut off."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the part is not a prefix of the file: start over
            part.unlink()
            raise ConnectionError("range not satisfiable") from None
        if exc.code == 404:
            raise BadArtefact(f"{url}: HTTP 404: the publication lists a file it does not hold") from None
        raise PublishError(f"{url}: HTTP {exc.code} {exc.reason}; run pull again later") from None
    with response:
        if have and (response.status != 206 or not _starts_at(response, have)):
            have = 0  # the whole file came back: start over
        received = 0
        with open(part, "r+b" if have else "wb") as f:
            f.seek(have)
            f.truncate()
            while chunk := response.read(CHUNK):
                f.write(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(have + received, size)
    if have + received < size:
        raise ConnectionError(f"connection closed after {have + received} bytes")
    return received


def _starts_at(response: http.client.HTTPResponse, offset: int) -> bool:
    """Whether a 206 answer's Content-Range starts at `offset`."""
    content_range = response.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {offset}-")


def _install(part: Path, db_path: Path, manifest: Manifest, where: str) -> None:
    """Decompress `part` into a temporary file beside `db_path`, check it, and rename it over `db_path`."""
    tmp = db_path.with_name(f".{db_path.name}.pull")
    digest, size = hashlib.sha256(), 0
    try:
        with open(part, "rb") as f, open(tmp, "wb") as out:
            reader = zstandard.ZstdDecompressor().stream_reader(f)
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if size != manifest.database.size or digest.hexdigest() != manifest.database.sha256:
            raise CorruptDownload(
                f"{where}: the decompressed database does not match the manifest's sha256; "
                "the publication is inconsistent: publish it again"
            )
        _check_schema(tmp, manifest.schema_version, where)
        for side in ("-wal", "-shm"):  # a stale WAL beside the old file would be replayed into the new one
            db_path.with_name(db_path.name + side).unlink(missing_ok=True)
        os.replace(tmp, db_path)
    except zstandard.ZstdError as exc:
        raise CorruptDownload(f"{where}: the download is not zstd-compressed data ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _check_schema(path: Path, expected: int, where: str) -> None:
    """The database at `path` opens and has the schema version the manifest says."""
    conn = sqlite3.connect(readonly_uri(path), uri=True)
    try:
        found = q.schema_version(conn)
    except sqlite3.Error as exc:
        raise CorruptDownload(f"{where}: the downloaded file is not a kernsurf database ({exc})") from None
    finally:
        conn.close()
    if found != expected:
        raise CorruptDownload(f"{where}: the manifest says schema {expected}, the database has {found}")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or exc.__class__.__name__
