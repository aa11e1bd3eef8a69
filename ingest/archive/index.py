"""APT `Packages.xz` indexes: download, cache with a freshness limit, parse.

Parsing uses python-debian's deb822 reader, but only on the stanzas whose
package name has one of the wanted prefixes (kernel packages are a few
hundred out of ~60,000); only those are kept in the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import lzma
import os
import tempfile
import time
import zlib
from pathlib import Path

from debian.deb822 import Packages

from ingest.errors import DiskFull, MirrorError

from .net import read_url

log = logging.getLogger("kernsurf.archive")

DEFAULT_MAX_AGE = 6 * 3600.0
_parsed: dict[tuple[str, float, tuple[str, ...]], list[Packages]] = {}


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a unique temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)  # mkstemp makes 0600
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in (28, 122):  # ENOSPC, EDQUOT
            raise DiskFull(
                f"no space left to write {path}; free some space or point XDG_CACHE_HOME elsewhere"
            ) from None
        raise


def load_packages(
    url: str,
    cache_path: Path,
    *,
    prefixes: tuple[str, ...] = ("linux-",),
    max_age: float = DEFAULT_MAX_AGE,
    refresh: bool = False,
) -> list[Packages]:
    """Stanzas of the Packages index (.xz, .gz or plain) at `url` whose Package starts with one of `prefixes`.

    Only those stanzas are cached, uncompressed, at `cache_path` + a tag of
    the prefixes (a few hundred kB instead of ~10 MB of xz per index, and no
    1 s decompression on each use). The copy is reused while younger than
    `max_age` seconds, then revalidated with If-Modified-Since. When the
    mirror cannot be reached a stale copy is used with a warning. A 404 is
    remembered for `max_age` too. Raises MirrorError (status 404 for a
    missing suite or architecture).
    """
    tag = hashlib.sha1("\0".join(prefixes).encode()).hexdigest()[:8]
    cached = cache_path.with_name(f"{cache_path.name}.{tag}.txt")
    absent = cache_path.with_name(cache_path.name + ".absent")
    if not refresh and _age(absent) <= max_age:
        raise MirrorError(f"{url}: HTTP 404 (remembered); check the suite and architecture", url, 404)
    age = _age(cached)
    if refresh or age > max_age:
        try:
            data = read_url(url, if_modified_since=None if refresh or age == _NEVER else time.time() - age)
        except MirrorError as exc:
            if exc.status == 404:
                write_atomic(absent, b"")
                cached.unlink(missing_ok=True)
                raise
            if age == _NEVER:
                if absent.exists():
                    raise MirrorError(
                        f"{url}: HTTP 404 (remembered); check the suite and architecture", url, 404
                    ) from None
                raise
            log.warning("using a stale index (%s)", exc)
        else:
            if data is None:  # 304 Not Modified
                os.utime(cached)
            else:
                try:
                    text = decompress(url, data)
                except (lzma.LZMAError, OSError, EOFError, zlib.error):
                    raise MirrorError(
                        f"{url}: index is corrupt; try again or use another mirror", url
                    ) from None
                write_atomic(cached, filter_stanzas(text, prefixes))
                absent.unlink(missing_ok=True)
    key = (str(cached), cached.stat().st_mtime, prefixes)
    if key not in _parsed:
        _parsed[key] = parse_packages(cached.read_bytes())
    return _parsed[key]


_NEVER = float("inf")


def decompress(url: str, data: bytes) -> bytes:
    """Uncompress an index according to its name (.xz, .gz, or plain)."""
    if url.endswith(".xz"):
        return lzma.decompress(data)
    if url.endswith(".gz"):
        return gzip.decompress(data)
    return data


def _age(path: Path) -> float:
    """Seconds since `path` was written, infinity if it does not exist."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return _NEVER


def filter_stanzas(text: bytes, prefixes: tuple[str, ...]) -> bytes:
    """The stanzas of an uncompressed Packages file whose Package starts with one of `prefixes`."""
    heads = tuple(f"Package: {p}" for p in prefixes)
    paras = text.decode("utf-8", "replace").split("\n\n")
    return "\n\n".join(p.strip("\n") for p in paras if p.lstrip("\n").startswith(heads)).encode()


def parse_packages(text: bytes) -> list[Packages]:
    """Parse the stanzas of an uncompressed Packages file."""
    return list(Packages.iter_paragraphs(text.decode("utf-8", "replace").splitlines(), use_apt_pkg=False))
