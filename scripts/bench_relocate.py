"""Benchmark: open, lay out and relocate every .debug_* section of every module
of a tree, on one core.

    .venv/bin/python scripts/bench_relocate.py [DIR] [--profile] [--limit N]

DIR defaults to $KERNSURF_MODULES_61, else the modules/ tree `kernsurf fetch`
keeps beside the cached 6.1.0-56 vmlinux. Prints seconds, relocations/s, peak
RSS and (with --profile) the top cProfile entries.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ingest.archive import store  # noqa: E402 (after the sys.path line)
from ingest.readers import kmod  # noqa: E402

VMLINUX_61 = store.cache_root() / "debian" / "linux-image-6.1.0-56-amd64-dbg_6.1.192-2_amd64" / "vmlinux"
DEFAULT = os.environ.get("KERNSURF_MODULES_61") or str(store.modules_dir(VMLINUX_61))


def run(root: str, paths: list[str]) -> tuple[int, int, int, dict[int, int], int]:
    applied = skipped = nbytes = 0
    unknown: dict[int, int] = {}
    for rel in paths:
        module = kmod.open_module(os.path.join(root, rel))
        names = [h.name for h in module.linked.headers if h.name.startswith(".debug_")]
        for data in module.linked.relocate(names).values():
            nbytes += len(data)
        counts = module.relocations
        applied += counts.applied
        skipped += counts.skipped
        for t, n in counts.unknown.items():
            unknown[t] = unknown.get(t, 0) + n
    return applied, skipped, nbytes, unknown, len(paths)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default=DEFAULT)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    if not os.path.isdir(args.root):
        sys.exit(f"no module tree at {args.root} (set KERNSURF_MODULES_61)")
    paths = kmod.list_modules(args.root)
    if args.limit:
        paths = paths[: args.limit]
    prof = cProfile.Profile() if args.profile else None
    cpu0, t0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    applied, skipped, nbytes, unknown, n = run(args.root, paths)
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"modules {n}, debug bytes {nbytes / 1e6:.0f} MB")
    print(f"wall {wall:.1f} s, cpu {cpu:.1f} s, peak RSS {rss:.0f} MB")
    print(f"relocations applied {applied:,} ({applied / cpu / 1e6:.1f} M/s of CPU), skipped {skipped:,}")
    print(f"unknown types in debug sections: {unknown or 'none'}")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
