"""`kernsurf build MANIFEST`: make a database hold what a manifest lists.

    result = build(manifest.load("manifests/default.yml"), Path("kernels.db"), jobs=2)

1. Builds already in the database (same distro, release, arch and, if pinned,
   package version) are left alone: nothing is fetched for them.
2. The others are fetched by up to `jobs` threads (downloads are I/O bound)
   and ingested one at a time (the ingest already uses every core): those
   already in the cache first, then in manifest order. Fetches run at most `jobs` images ahead of the ingest, so the cache
   holds at most `jobs` + 1 images this run has not ingested yet.
3. When every build is in, the manifest's groups replace the stored groups,
   then the finalizers run: the differences of every pair the groups define
   (`diff.compute_group_diffs`), then the name search index (`db.build_search_index`).

A failed fetch or ingest does not stop the other builds; the groups and
finalizers are then skipped and BuildError is raised. Each ingest is one
transaction and the cache only keeps verified images, so re-running picks up
where it stopped.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ingest import db, pipeline
from ingest.archive import debian, store, ubuntu
from ingest.archive.store import PackageRef
from ingest.catalog.manifest import BuildSpec, Manifest, Member
from ingest.changes import diff
from ingest.errors import ArchiveError, BuildError, UnknownPackage
from ingest.modules.tree import summary as module_summary
from ingest.queries import builds as builds_q
from ingest.queries.builds import StoredGroup, StoredMember

#: A step run after the builds and groups are stored; it must be incremental.
Finalizer = Callable[[sqlite3.Connection], object]

Progress = Callable[[int, int], None]


class Cancelled(Exception):
    """A fetch was stopped because the build is being aborted."""


class _Stop(Exception):
    """The database cannot take more builds (disk full, locked): stop this run."""


@dataclass(frozen=True)
class Fetched:
    """A kernel image on local disk, with the identity of the package it came from."""

    path: Path
    version: str | None  # package version, e.g. 6.1.192-2
    release: str  # kernel release, e.g. 6.1.0-56-amd64
    arch: str
    flavor: str | None
    downloaded: int = 0  # bytes received over the network for it
    cached: bool = False  # True when it was already in the cache
    warnings: tuple[str, ...] = ()
    evict: Callable[[], int] | None = None  # deletes the cached image, returns the bytes freed
    config: Path | None = None  # the package's kernel config, when found
    modules: Path | None = None  # the package's modules tree (store.modules_dir), when fetched


#: fetcher(spec, progress) -> Fetched; raises ArchiveError. Tests inject a fake one.
Fetcher = Callable[[BuildSpec, "Progress | None"], Fetched]


class DebianFetcher:
    """The default fetcher: resolve the spec's debug package in the archive index, fetch its vmlinux."""

    def __init__(
        self,
        mirror: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        config: bool = True,
        modules: bool = True,
    ) -> None:
        self.mirror, self.cache_dir, self.config, self.modules = mirror, cache_dir, config, modules

    def _resolve(self, spec: BuildSpec) -> PackageRef:
        """The spec's package in its archive (`--mirror` is Debian's; Ubuntu's from its environment)."""
        if spec.source == "ubuntu":
            return ubuntu.resolve(spec.package, suite=spec.suite, arch=spec.arch, cache_dir=self.cache_dir)
        return debian.resolve(
            spec.package, suite=spec.suite, arch=spec.arch, mirror=self.mirror, cache_dir=self.cache_dir
        )

    def is_cached(self, spec: BuildSpec) -> bool:
        """Whether the spec's image is in the cache (resolved through the archive index, usually cached)."""
        try:
            ref = self._resolve(spec)
        except ArchiveError:
            return False
        hit = store.cached_image(ref, self.cache_dir)
        return hit is not None and (hit.modules_path is not None or not self.modules)

    def __call__(self, spec: BuildSpec, progress: Progress | None = None) -> Fetched:
        ref = self._resolve(spec)
        if spec.version is not None and ref.version != spec.version:
            raise UnknownPackage(
                f"{spec.package}: the archive ({ref.suite}) offers version {ref.version}, "
                f"the manifest pins {spec.version}; update or drop `version:`"
            )
        if spec.source == "ubuntu":
            image = ubuntu.fetch(ref, self.cache_dir, progress, config=self.config, modules=self.modules)
        else:
            image = debian.fetch(
                ref, self.cache_dir, progress, config=self.config, mirror=self.mirror, modules=self.modules
            )
        cache_dir = self.cache_dir
        return Fetched(
            path=image.path,
            version=ref.version,
            release=ref.release,
            arch=ref.arch,
            flavor=ref.flavor,
            downloaded=image.downloaded,
            cached=image.cached,
            warnings=image.warnings,
            evict=lambda: store.evict(ref, cache_dir),
            config=image.config_path,
            modules=image.modules_path,
        )


@dataclass
class BuildRow:
    """What happened to one build of the manifest."""

    spec: BuildSpec
    state: str = "pending"  # stored (already there), ingested, present (same build-id), failed
    name: str | None = None  # the build's name in the database
    db_id: int | None = None
    cached: bool | None = None  # None: not fetched (already stored)
    fetch_seconds: float = 0.0
    ingest_seconds: float = 0.0
    downloaded: int = 0
    db_size: int = 0  # database size after this build
    error: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass
class BuildResult:
    """The outcome of one `build` run."""

    rows: list[BuildRow]
    seconds: float = 0.0
    db_size: int = 0
    groups: int = 0
    finalizers: list[tuple[str, float]] = field(default_factory=list)

    @property
    def downloaded(self) -> int:
        return sum(r.downloaded for r in self.rows)

    @property
    def failed(self) -> list[BuildRow]:
        return [r for r in self.rows if r.state == "failed"]


def build(
    manifest: Manifest,
    db_path: str | os.PathLike,
    *,
    jobs: int = 2,
    fetcher: Fetcher | None = None,
    prune: bool = False,
    ingest_jobs: int | None = None,
    report: Callable[[str], None] | None = None,
) -> BuildResult:
    """Fetch and ingest the manifest's missing builds into `db_path`, store its groups, run the finalizers.

    `jobs`: parallel fetches; `prune`: delete each image from the cache once
    ingested; `ingest_jobs`: processes of the DWARF walk (default all cores);
    `report(line)` receives progress lines. Raises BuildError if a build failed.
    """
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    start = time.perf_counter()
    say = report or (lambda line: None)
    fetcher = fetcher or DebianFetcher()
    db_path = Path(db_path)
    rows = {spec.id: BuildRow(spec) for spec in manifest.builds}

    conn = db.connect(db_path)
    try:
        for row in rows.values():
            s = row.spec
            found = builds_q.find_release(conn, s.source, s.release, s.arch, s.version)
            if found:
                row.state, row.db_id, row.name = "stored", found.id, found.name
    finally:
        conn.close()
    pending = [r for r in rows.values() if r.state == "pending"]
    # Images already in the cache go first, so the ingest starts while the others download.
    is_cached = getattr(fetcher, "is_cached", None)
    if is_cached is not None:
        cached = {r.spec.id for r in pending if is_cached(r.spec)}
        pending.sort(key=lambda r: r.spec.id not in cached)
    say(
        f"{len(rows) - len(pending)} of {len(rows)} builds already in {db_path}; "
        f"{len(pending)} to fetch and ingest" + (f" ({jobs} fetches at a time)" if pending else "")
    )

    _fetch_and_ingest(pending, db_path, fetcher, jobs, prune, ingest_jobs, say)
    result = BuildResult(list(rows.values()), db_size=_size(db_path))
    failed = result.failed
    if failed:
        result.seconds = time.perf_counter() - start
        left = sum(1 for r in rows.values() if r.state == "pending")
        raise BuildError(
            f"{len(failed)} of {len(rows)} builds failed ({', '.join(r.spec.id for r in failed)})"
            + (f", {left} not attempted" if left else "")
            + "; groups and finalizers were not updated; fix the cause and run again "
            "(finished builds are kept)",
            result,
        )

    conn = db.connect(db_path)
    try:
        db.store_groups(conn, [_stored_group(g.name, g.kind, g.members, rows) for g in manifest.groups])
        result.groups = len(manifest.groups)
        for hook in finalizers():
            name = f"{hook.__module__}.{hook.__qualname__}"
            say(f"running {name}")
            t = time.perf_counter()
            hook(conn)
            result.finalizers.append((name, time.perf_counter() - t))
    finally:
        conn.close()
    result.db_size = _size(db_path)
    result.seconds = time.perf_counter() - start
    return result


def finalizers() -> list[Finalizer]:
    """The steps after the builds, in order: the group differences, then the search index."""
    return [diff.compute_group_diffs, db.build_search_index]


def _stored_group(name: str, kind: str, members: Iterable[Member], rows: dict[str, BuildRow]) -> StoredGroup:
    """A manifest group as db.store_groups takes it: members by database id."""
    stored = []
    for m in members:
        build = rows[m.build].db_id
        assert build is not None  # every build is in: failures stopped the run before the groups
        stored.append(StoredMember(build=build, label=m.label))
    return StoredGroup(name=name, kind=kind, members=stored)


def _fetch_and_ingest(
    pending: list[BuildRow],
    db_path: Path,
    fetcher: Fetcher,
    jobs: int,
    prune: bool,
    ingest_jobs: int | None,
    say: Callable[[str], None],
) -> None:
    """Fetch in a thread pool at most `jobs` ahead, ingest in manifest order in this thread."""
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if cancel.is_set():
            raise Cancelled("build aborted")

    def fetch(row: BuildRow) -> Fetched | None:
        s = row.spec
        say(f"fetching {s.id} ({s.package}, {s.suite}, {s.arch})")
        t = time.perf_counter()
        try:
            got = fetcher(s, progress)
        except (ArchiveError, OSError) as exc:
            row.state, row.error = "failed", f"fetch: {exc}"
            say(f"{s.id}: fetch failed: {exc}")
            return None
        finally:
            row.fetch_seconds = time.perf_counter() - t
        row.cached, row.downloaded, row.warnings = got.cached, got.downloaded, got.warnings
        if got.cached:
            say(f"{s.id}: in the cache ({got.path})")
        else:
            rate = got.downloaded / row.fetch_seconds / 1e6 if row.fetch_seconds else 0
            say(
                f"fetched {s.id}: {store.human_size(got.downloaded)} in {row.fetch_seconds:.0f} s ({rate:.0f} MB/s)"
            )
        for warning in got.warnings:
            say(f"{s.id}: {warning}")
        return got

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fetch") as pool:
        futures: dict[int, Future] = {}
        submitted = 0

        def submit_until(limit: int) -> None:
            nonlocal submitted
            while submitted < min(limit, len(pending)):
                futures[submitted] = pool.submit(fetch, pending[submitted])
                submitted += 1

        try:
            submit_until(jobs)
            for i, row in enumerate(pending):
                got = futures.pop(i).result()
                submit_until(i + 1 + jobs)
                if got is not None:
                    _ingest(row, got, db_path, prune, ingest_jobs, say)
        except BaseException as exc:
            cancel.set()
            for future in futures.values():
                future.cancel()
            if not isinstance(exc, _Stop):
                raise


def _ingest(
    row: BuildRow,
    got: Fetched,
    db_path: Path,
    prune: bool,
    ingest_jobs: int | None,
    say: Callable[[str], None],
) -> None:
    s = row.spec
    say(f"ingesting {s.id} ({got.release})")
    t = time.perf_counter()
    identity = pipeline.Identity(
        distro=s.source,
        version=got.version,
        release=got.release,
        arch=got.arch,
        flavor=got.flavor,
        label=s.label,
    )
    try:
        res = pipeline.ingest(
            got.path, db_path, identity, jobs=ingest_jobs, config=got.config, modules=got.modules
        )
    except pipeline.IngestError as exc:
        row.state, row.error = "failed", f"ingest: {exc}"
        row.ingest_seconds = time.perf_counter() - t
        say(f"{s.id}: ingest failed: {exc}")
        return
    except sqlite3.Error as exc:  # e.g. disk full: the transaction was rolled back
        row.state, row.error = "failed", f"database {db_path}: {exc}"
        say(f"{s.id}: cannot store it: {exc}; stopping")
        raise _Stop from None
    row.ingest_seconds = time.perf_counter() - t
    conn = db.connect(db_path)
    try:
        row.db_id, row.name = builds_q.build_named(conn, res.name), res.name
    finally:
        conn.close()
    row.db_size = _size(db_path)
    if res.skipped:
        row.state = "present"
        say(f"{s.id}: the database already holds this image (same build-id) as {res.name}")
    else:
        row.state = "ingested"
        fetched = "cached" if got.cached else f"fetch {row.fetch_seconds:.0f} s"
        modules = res.build.modules if res.build is not None else None
        say(
            f"done {s.id}: {fetched}, ingest {row.ingest_seconds:.0f} s, "
            f"database +{store.human_size(res.bytes_added)}"
            + (f", {module_summary(modules)}" if modules is not None else "")
        )
        for m in modules or ():
            if m.error:
                say(f"{s.id}: module {m.path} unreadable: {m.error}")
    if prune and got.evict is not None:
        freed = got.evict()
        say(f"{s.id}: pruned {store.human_size(freed)} from the cache")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
