#!/usr/bin/env python3
"""Build benchmark (`make bench-build`): run `kernsurf build` on a manifest and
report, per build and in total, the wall time, bytes downloaded, database size
and peak disk use (cache + database, sampled every 0.2 s).

    bench_build.py MANIFEST [--db PATH] [-j N] [--prune] [--empty-cache]

By default the build starts from the current cache (the report says which
images were already there) into a new temporary database. --empty-cache uses a
fresh temporary cache instead (everything is downloaded, then deleted);
--prune deletes each image once ingested, as `kernsurf build --prune` does.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def tree_size(root: Path) -> int:
    """Bytes in the files under `root` (0 if it does not exist)."""
    total = 0
    for parent, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                pass
    return total


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class DiskSampler(threading.Thread):
    """Samples cache + database size; tracks the overall peak and the peak while each build is current."""

    def __init__(self, cache: Path, db: Path, interval: float = 0.2):
        super().__init__(daemon=True)
        self.cache, self.db, self.interval = cache, db, interval
        self.current: str | None = None
        self.peak = 0
        self.peak_cache = 0
        self.per_build: dict[str, int] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        cache = tree_size(self.cache)
        db = (
            file_size(self.db)
            + file_size(self.db.with_name(self.db.name + "-journal"))
            + file_size(self.db.with_name(self.db.name + "-wal"))
        )
        total = cache + db
        self.peak, self.peak_cache = max(self.peak, total), max(self.peak_cache, cache)
        if self.current is not None:
            self.per_build[self.current] = max(self.per_build.get(self.current, 0), total)

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()


def mb(n: int) -> str:
    return f"{n / 1e6:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("--db", help="database to build into (default: a new temporary one)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="parallel downloads (default 2)")
    parser.add_argument("--prune", action="store_true", help="delete each image from the cache once ingested")
    parser.add_argument("--empty-cache", action="store_true", help="start from an empty temporary cache")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="kernsurf-bench-")
    if args.empty_cache:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp.name) / "xdg")

    from ingest.archive import debian
    from ingest.archive.store import cache_root, human_size
    from ingest.catalog import batch as builder
    from ingest.catalog import manifest
    from ingest.errors import ArchiveError

    spec = manifest.load(args.manifest)
    db = Path(args.db) if args.db else Path(tmp.name) / "bench.db"
    cache = cache_root()
    cached: dict[str, bool | None] = {}
    for b in spec.builds:
        try:
            cached[b.id] = (
                debian.cached_image(debian.resolve(b.package, suite=b.suite, arch=b.arch)) is not None
            )
        except ArchiveError:
            cached[b.id] = None
    cache_before, db_before = tree_size(cache), file_size(db)
    print(
        f"{args.manifest}: {len(spec.builds)} builds; cache {cache} holds {human_size(cache_before)}, "
        f"with {sum(1 for v in cached.values() if v)} of these images: "
        f"{', '.join(k for k, v in cached.items() if v) or 'none'}",
        flush=True,
    )

    sampler = DiskSampler(cache, db)
    sampler.sample()
    sampler.start()
    start = time.perf_counter()

    lock = threading.Lock()

    def report(line: str) -> None:  # called from the fetch threads too
        if line.startswith("ingesting "):
            sampler.current = line.split()[1]
        with lock:
            print(f"  [{time.perf_counter() - start:6.1f} s] {line}", flush=True)

    failed = None
    try:
        result = builder.build(spec, db, jobs=args.jobs, prune=args.prune, report=report)
    except builder.BuildError as exc:
        result, failed = exc.result, exc
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    sampler.sample()

    print()
    header = (
        "build",
        "state",
        "cached",
        "fetch s",
        "ingest s",
        "downloaded MB",
        "DB MB",
        "DB +MB",
        "peak disk MB",
    )
    rows = []
    previous = db_before
    for r in result.rows:
        grew = r.db_size - previous if r.db_size else 0
        previous = r.db_size or previous
        rows.append(
            (
                r.spec.id,
                r.state,
                {True: "yes", False: "no", None: "-"}[r.cached],
                f"{r.fetch_seconds:.0f}" if r.cached is not None else "",
                f"{r.ingest_seconds:.0f}" if r.ingest_seconds else "",
                mb(r.downloaded),
                mb(r.db_size) if r.db_size else "",
                mb(grew) if grew else "",
                mb(sampler.per_build[r.spec.id]) if r.spec.id in sampler.per_build else "",
            )
        )
    widths = [max(len(str(x[k])) for x in [header, *rows]) for k in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(c).ljust(w) if k < 3 else str(c).rjust(w) for k, (c, w) in enumerate(zip(row, widths))
            )
        )

    final_db = file_size(db)
    ingested = [r for r in result.rows if r.state == "ingested"]
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print()
    print(
        f"total: wall {wall:.0f} s ({wall / 60:.1f} min); downloaded {human_size(result.downloaded)}; "
        f"{len(ingested)} builds ingested in {sum(r.ingest_seconds for r in result.rows):.0f} s of ingest"
    )
    print(
        f"database: {human_size(final_db)}"
        + (
            f", {human_size(final_db // len(ingested))} per ingested build"
            if ingested and not db_before
            else ""
        )
    )
    print(
        f"disk: cache {human_size(cache_before)} before, {human_size(tree_size(cache))} after, "
        f"peak cache {human_size(sampler.peak_cache)}; peak cache + database {human_size(sampler.peak)}, "
        f"{human_size(max(0, sampler.peak - cache_before - final_db))} beyond the cache at start and the final database"
    )
    print(f"finalizers: {', '.join(f'{n} {s:.1f} s' for n, s in result.finalizers) or 'none'}")
    print(f"peak RSS: build process {self_rss:.0f} MB, largest DWARF worker {child_rss:.0f} MB")
    if failed is not None:
        print(f"FAILED: {failed}")
        for r in result.failed:
            print(f"  {r.spec.id}: {r.error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
