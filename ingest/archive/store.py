"""The local cache of fetched kernel images, and the distro-neutral fetch.

Layout under the cache root (``$XDG_CACHE_HOME/kernsurf`` or
``~/.cache/kernsurf``)::

    <distro>/<package>_<version>_<arch>/vmlinux        the debug image
    <distro>/<package>_<version>_<arch>/vmlinux.json   sidecar: what and from where
    <distro>/<package>_<version>_<arch>/config         kernel config, when found
    <distro>/<package>_<version>_<arch>/modules/       every debug module, <path below kernel/>.ko.zst
    locks/<distro>/<package>_<version>_<arch>.lock     flock: one fetch per key
    index/<host>/<path>/dists/<suite>/.../Packages.xz  cached indexes

A vmlinux counts as cached only with a sidecar that matches the package's
version and SHA256; its modules only when the sidecar's "modules" says "ok"
(an entry fetched without them is completed by the next fetch that wants
them: one more download, only the modules extracted). Everything is written
under a ``.part`` name and renamed once verified, so an interrupted run leaves
only ``.part`` files and directories, which the next run of the same key deletes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import io
import json
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from ingest.errors import ArchiveError, ChecksumMismatch, DiskFull, MemberNotFound, NoVmlinux

from . import deb
from .index import write_atomic
from .modules import ModuleStats, ModuleTree, remove_tree
from .net import HashingReader, Progress, open_url

log = logging.getLogger("kernsurf.archive")

DEFAULT_CONFIG_LIMIT = 150 * 1000 * 1000
SIDECAR = "vmlinux.json"
MODULES = "modules"


@dataclass(frozen=True)
class PackageRef:
    """One binary package in an archive index, and the kernel it carries."""

    name: str
    version: str
    arch: str
    url: str
    size: int
    sha256: str
    release: str  # kernel release (uname -r), e.g. 6.1.0-56-amd64
    flavor: str  # e.g. amd64, cloud-amd64, rt-arm64, 686-pae
    suite: str = ""  # suite whose index listed it, e.g. bookworm-security
    base: str = ""  # archive base URL whose index listed it
    distro: str = "debian"

    @property
    def key(self) -> str:
        """Cache key: <package>_<version>_<arch> (':' of an epoch escaped)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}"


@dataclass(frozen=True)
class FetchedImage:
    """A vmlinux in the cache, with the package it came from."""

    path: Path
    ref: PackageRef
    config_path: Path | None
    cached: bool = False  # True when the image was already in the cache
    downloaded: int = 0  # bytes received over the network by this call
    warnings: tuple[str, ...] = field(default=())
    modules_path: Path | None = None  # the cached modules tree, when fetched


class Streamed(NamedTuple):
    """What one pass over a package wrote: the member, bytes read, modules kept."""

    member: str
    downloaded: int
    modules: ModuleStats | None


@dataclass(frozen=True)
class ConfigSource:
    """A package that may hold the kernel config, and where it would be."""

    ref: PackageRef
    paths: tuple[str, ...]


def human_size(n: int) -> str:
    """Bytes as a short decimal figure: 858 MB, 70.6 MB, 100 B."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
    return f"{n} B"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The kernsurf cache root: `cache_dir`, $XDG_CACHE_HOME/kernsurf or ~/.cache/kernsurf."""
    if cache_dir is not None:
        return Path(cache_dir)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kernsurf"


def key_dir(ref: PackageRef, cache_dir: str | os.PathLike | None = None) -> Path:
    """Directory holding one package's vmlinux, sidecar and config."""
    return cache_root(cache_dir) / ref.distro / ref.key


def lock_path(ref: PackageRef, cache_dir: str | os.PathLike | None = None) -> Path:
    """Lock file of one cache key (kept outside the key directory, never deleted)."""
    return cache_root(cache_dir) / "locks" / ref.distro / (ref.key + ".lock")


@contextlib.contextmanager
def key_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (waits for other holders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another fetch holding %s", path)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_sidecar(directory: Path) -> dict | None:
    """The sidecar of a cache entry, or None if absent or unreadable."""
    try:
        return json.loads((directory / SIDECAR).read_text())
    except (OSError, ValueError):
        return None


def cached_image(ref: PackageRef, cache_dir: str | os.PathLike | None = None) -> FetchedImage | None:
    """The cached image for `ref` if complete and matching, else None (no network)."""
    directory = key_dir(ref, cache_dir)
    meta = read_sidecar(directory)
    vmlinux = directory / "vmlinux"
    if not meta or meta.get("sha256") != ref.sha256 or meta.get("version") != ref.version:
        return None
    try:
        if vmlinux.stat().st_size != meta.get("vmlinux_size"):
            return None
    except OSError:
        return None
    config = directory / "config"
    return FetchedImage(
        vmlinux, ref, config if config.exists() else None, cached=True, modules_path=modules_dir(directory)
    )


def modules_dir(entry: str | os.PathLike) -> Path | None:
    """The modules tree of a cache entry (its directory or its vmlinux), None when not cached.

    The tree holds one `<path below lib/modules/<release>/kernel/>.ko.zst` per
    module of the package (e.g. `fs/ext4/ext4.ko.zst`), each a single zstd
    frame with its content size; the sidecar's "modules" holds count and sizes.
    """
    path = Path(entry)
    directory = path if path.is_dir() else path.parent
    meta = read_sidecar(directory) or {}
    tree = directory / MODULES
    return tree if _has_modules(meta) and tree.is_dir() else None


def _has_modules(meta: dict) -> bool:
    return (meta.get("modules") or {}).get("status") == "ok"


def _modules_meta(stats: ModuleStats, roots: Collection[str], seconds: float) -> dict:
    return {
        "status": "ok",
        "count": stats.files,
        "bytes": stats.bytes,
        "compressed": stats.compressed,
        "roots": sorted(roots),
        "seconds": round(seconds, 2),
    }


def write_sidecar(directory: Path, meta: dict) -> None:
    write_atomic(directory / SIDECAR, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())


def clean_parts(directory: Path) -> None:
    for part in directory.glob("*.part"):
        remove_tree(part)


def disk_full(exc: OSError, directory: Path) -> DiskFull:
    return DiskFull(
        f"no space left in {directory} ({exc.strerror}); free some space or set XDG_CACHE_HOME to a larger disk"
    )


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def fetch_member(
    ref: PackageRef,
    wanted: Callable[[str], bool] | None,
    dest: Path | None,
    *,
    maybe: Callable[[str], bool] | None = None,
    progress: Progress | None = None,
    offset: int = 0,
    total: int | None = None,
    modules: ModuleTree | None = None,
) -> Streamed:
    """Stream `ref` over HTTP, extract the member satisfying `wanted` to `dest`, verify the .deb.

    The .deb is never written to disk: the wanted file is decompressed on the
    fly, then the rest of the stream is read without decompression to check
    the size and SHA256 of the whole package against the index. With
    `modules`, the whole data member is decompressed and every module is
    compressed into that tree (`wanted` may then be None: modules only).
    `dest` and the tree only appear once everything checked out.
    """
    part = dest.with_name(dest.name + ".part") if dest is not None else None
    try:
        resp = open_url(ref.url)
    except BaseException:
        if modules is not None:
            modules.abort()
        raise
    assert resp is not None
    reader = HashingReader(resp, ref.size, ref.url, progress, offset, total)
    try:
        with resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) != ref.size:
                raise ChecksumMismatch(
                    f"{ref.url}: mirror serves {length} bytes but the index says {ref.size}; refresh the index or use another mirror"
                )
            missing: MemberNotFound | None = None
            member = ""
            try:
                member = deb.extract(
                    io.BufferedReader(reader, 1 << 20),
                    wanted,
                    part,
                    maybe=maybe,
                    keep=modules.wants if modules else None,
                    visit=modules.add if modules else None,
                )
            except MemberNotFound as exc:
                missing = exc
            reader.drain()
            stats = modules.finish() if modules is not None else None
        digest = reader.sha256.hexdigest()
        if digest != ref.sha256.lower():
            raise ChecksumMismatch(
                f"{ref.url}: SHA256 {digest} differs from the index's {ref.sha256}; refresh the index and fetch again"
            )
        if missing is not None:
            raise missing
        if part is not None and dest is not None:
            os.replace(part, dest)
        if modules is not None:
            modules.commit()
        return Streamed(member, reader.count, stats)
    except BaseException:
        if part is not None:
            part.unlink(missing_ok=True)
        if modules is not None:
            modules.abort()
        raise


def fetch_image(
    ref: PackageRef,
    vmlinux_paths: Collection[str],
    *,
    config_sources: Callable[[], list[ConfigSource]] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    config_limit: int = DEFAULT_CONFIG_LIMIT,
    module_roots: Collection[str] = (),
    modules: bool = True,
) -> FetchedImage:
    """Fetch `ref`'s vmlinux (one of `vmlinux_paths` inside the package) into the cache.

    With `modules`, the same single pass over the package also keeps every
    `.ko` below one of `module_roots` (see modules.py); a cached entry without
    them is completed (one more download, only the modules extracted).
    `config_sources` lists packages that may hold the kernel config, tried in
    order (those larger than `config_limit` bytes are skipped); failing to get
    the config is only a warning. Concurrent calls for the same key wait for
    each other; different keys proceed in parallel.
    """
    directory = key_dir(ref, cache_dir)
    roots = tuple(r.strip("/") for r in module_roots) if modules else ()
    with key_lock(lock_path(ref, cache_dir)):
        hit = cached_image(ref, cache_dir)
        if hit is not None:
            return _complete_hit(hit, directory, roots, progress, config_sources, config_limit)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in (SIDECAR, "config", MODULES):
            remove_tree(directory / stale)
        clean_parts(directory)
        sources = _ConfigSources(config_sources)
        first = next((s for s in sources.listed if s.ref.size <= config_limit), None)
        total = ref.size + (first.ref.size if first else 0)
        started = time.monotonic()
        got = _fetch_vmlinux(
            ref, directory, frozenset(p.lstrip("/") for p in vmlinux_paths), roots, progress, total
        )
        meta = _image_meta(ref, got, directory, roots, time.monotonic() - started)
        write_sidecar(directory, meta)
        count = got.downloaded
        config = None
        warnings: list[str] = []
        if config_sources is not None:
            config, extra = _fetch_config(
                directory, meta, sources.known, config_limit, progress, count, warnings, total
            )
            count += extra
        return FetchedImage(
            directory / "vmlinux",
            ref,
            config,
            cached=False,
            downloaded=count,
            warnings=tuple(warnings),
            modules_path=modules_dir(directory),
        )


def _complete_hit(
    hit: FetchedImage,
    directory: Path,
    roots: tuple[str, ...],
    progress: Progress | None,
    config_sources: Callable[[], list[ConfigSource]] | None,
    config_limit: int,
) -> FetchedImage:
    """A cache hit, with the modules it lacks (when `roots` asks for them) and
    another try at a config that failed before (or is now under the limit)."""
    if roots and hit.modules_path is None:
        hit = _complete_modules(hit, directory, roots, progress)
    meta = read_sidecar(directory) or {}
    if (
        hit.config_path is None
        and config_sources is not None
        and _config_retry(meta.get("config"), config_limit)
    ):
        warnings: list[str] = []
        config, _ = _fetch_config(directory, meta, config_sources, config_limit, None, 0, warnings)
        hit = dataclasses.replace(hit, config_path=config, warnings=tuple(warnings))
    return hit


class _ConfigSources:
    """The config sources of a fetch, listed once before the download (their
    sizes count in the progress total); an archive error listing them is raised
    only when the config is fetched, after the vmlinux."""

    def __init__(self, config_sources: Callable[[], list[ConfigSource]] | None) -> None:
        self.listed: list[ConfigSource] = []
        self.error: ArchiveError | None = None
        if config_sources is not None:
            try:
                self.listed = config_sources()
            except ArchiveError as exc:
                self.error = exc

    def known(self) -> list[ConfigSource]:
        if self.error is not None:
            raise self.error
        return self.listed


def _fetch_vmlinux(
    ref: PackageRef,
    directory: Path,
    wanted_paths: frozenset[str],
    roots: tuple[str, ...],
    progress: Progress | None,
    total: int,
) -> Streamed:
    """One pass over the package: its vmlinux into `directory` (and its modules
    below `roots`); on failure, the directory is left as it was and the error
    says what to do."""
    try:
        return fetch_member(
            ref,
            lambda p: p in wanted_paths,
            directory / "vmlinux",
            maybe=lambda p: os.path.basename(p).startswith("vmlinux"),
            progress=progress,
            total=total,
            modules=ModuleTree(directory / MODULES, roots) if roots else None,
        )
    except BaseException as exc:
        clean_parts(directory)
        with contextlib.suppress(OSError):
            directory.rmdir()  # only succeeds if nothing else is there
        if isinstance(exc, MemberNotFound):
            raise NoVmlinux(
                f"{ref.name} {ref.version} has no vmlinux at {', '.join(sorted(wanted_paths))}; pick a -dbg/-dbgsym image package"
            ) from None
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise disk_full(exc, directory) from None
        raise


def _image_meta(
    ref: PackageRef, got: Streamed, directory: Path, roots: tuple[str, ...], seconds: float
) -> dict:
    """The sidecar of a freshly fetched image: the package, where the vmlinux was, when, how long."""
    meta = {
        "package": ref.name,
        **asdict(ref),
        "member": got.member,
        "vmlinux_size": (directory / "vmlinux").stat().st_size,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(seconds, 2),
    }
    if got.modules is not None:
        meta["modules"] = _modules_meta(got.modules, roots, seconds)
    return meta


def _complete_modules(
    hit: FetchedImage, directory: Path, roots: tuple[str, ...], progress: Progress | None
) -> FetchedImage:
    """Download `hit`'s package again and keep only its modules (an entry cached before modules)."""
    started = time.monotonic()
    log.info("%s: cached without modules; downloading the package again for them", hit.ref.name)
    try:
        got = fetch_member(
            hit.ref, None, None, progress=progress, modules=ModuleTree(directory / MODULES, roots)
        )
    except BaseException as exc:
        clean_parts(directory)
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise disk_full(exc, directory) from None
        raise
    assert got.modules is not None
    meta = read_sidecar(directory) or {}
    write_sidecar(
        directory, {**meta, "modules": _modules_meta(got.modules, roots, time.monotonic() - started)}
    )
    return dataclasses.replace(
        hit, cached=False, downloaded=got.downloaded, modules_path=modules_dir(directory)
    )


def _config_retry(status: dict | None, limit: int) -> bool:
    """Whether a cache hit without config should try fetching it again."""
    if not status:
        return True
    if status.get("status") == "too_large":
        return limit > status.get("limit", 0)
    return status.get("status") == "error"


def _fetch_config(
    directory: Path,
    meta: dict,
    sources: Callable[[], list[ConfigSource]],
    limit: int,
    progress: Progress | None,
    offset: int,
    warnings: list[str],
    total: int | None = None,
) -> tuple[Path | None, int]:
    """Try the config sources in order; record the outcome in the sidecar."""
    dest = directory / "config"
    try:
        status, got = _config_from(sources(), directory, dest, limit, progress, offset, total)
    except ArchiveError as exc:
        status, got = {"status": "error", "error": str(exc)}, 0
    if status["status"] != "ok":
        reason = _config_problem(status, limit)
        warnings.append(f"kernel config not fetched: {reason}")
        log.warning("kernel config not fetched: %s", reason)
    meta = {**meta, "config": status}
    try:
        write_sidecar(directory, meta)
    except ArchiveError as exc:
        warnings.append(f"sidecar not updated: {exc}")
    return (dest if status["status"] == "ok" else None), got


def _config_from(
    candidates: list[ConfigSource],
    directory: Path,
    dest: Path,
    limit: int,
    progress: Progress | None,
    offset: int,
    total: int | None,
) -> tuple[dict, int]:
    """The config from the first candidate (of at most `limit` bytes) that has
    one, into `dest`: the sidecar's "config" status, and the bytes downloaded."""
    got = 0
    for source in (c for c in candidates if c.ref.size <= limit):
        paths = frozenset(p.lstrip("/") for p in source.paths)
        try:
            member, count, _ = fetch_member(
                source.ref,
                paths.__contains__,
                dest,
                progress=progress,
                offset=offset + got,
                total=max(total or 0, offset + got + source.ref.size),
            )
        except MemberNotFound:
            continue
        except (ArchiveError, OSError) as exc:
            clean_parts(directory)
            return {"status": "error", "error": str(exc)}, got
        got += count
        ref = source.ref
        status = {"status": "ok", "package": ref.name, "version": ref.version, "sha256": ref.sha256}
        return {**status, "url": ref.url, "member": member}, got
    too_big = [c for c in candidates if c.ref.size > limit]
    if too_big:
        biggest = min(too_big, key=lambda c: c.ref.size)
        return {
            "status": "too_large",
            "limit": limit,
            "package": biggest.ref.name,
            "size": biggest.ref.size,
        }, got
    return {"status": "missing", "limit": limit}, got


def _config_problem(status: dict, limit: int) -> str:
    """Why the config was not fetched, from its sidecar status."""
    if status["status"] == "too_large":
        return f"{status['package']} is {human_size(status['size'])}, over the {human_size(limit)} limit; raise the config size limit"
    if status["status"] == "missing":
        return "no package with a kernel config found for this version"
    return status["error"]


def evict(ref: PackageRef, cache_dir: str | os.PathLike | None = None) -> int:
    """Delete `ref`'s cache entry (vmlinux, sidecar, config, modules); returns the bytes freed.

    Used by `kernsurf build --prune` once an image is in the database. Takes the
    key's lock, so it never removes an image another process is still fetching.
    """
    directory = key_dir(ref, cache_dir)
    freed = 0
    with key_lock(lock_path(ref, cache_dir)):
        if not directory.is_dir():
            return 0
        for path in directory.iterdir():
            freed += remove_tree(path)
        with contextlib.suppress(OSError):
            directory.rmdir()
    return freed
