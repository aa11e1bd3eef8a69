#!/usr/bin/env python3
"""Modules benchmark: one image ingested twice into fresh databases, with
its module tree and without (`kernsurf ingest IMAGE --modules TREE|none`,
a new process each), then what the modules add: wall seconds, peak RSS of
the largest process, database bytes per table (SQLite's dbstat), and row
counts.

Usage: bench_modules.py IMAGE [--modules TREE] [--limit N]

TREE defaults to the modules/ tree the cache keeps beside IMAGE (`kernsurf
fetch` keeps it); --limit N links only the first N modules (by path) into a
temporary tree, for quick runs."""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.archive import store  # noqa: E402 (after the sys.path line)
from ingest.readers import kmod  # noqa: E402

_COUNTS = ("modules", "functions", "instances", "callers", "symbols", "types", "tracepoints")


def _run(image: Path, db: Path, modules: str) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest",
            "ingest",
            str(image),
            "--db",
            str(db),
            "--modules",
            modules,
            "--timings",
        ],
        cwd=ROOT,
        check=True,
        stdout=sys.stderr,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "rss_mb": after.ru_maxrss / 1024}


def _tables(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    finally:
        conn.close()


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _COUNTS}
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("--modules", type=Path)
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    tree = args.modules or store.modules_dir(args.image)
    if tree is None:
        sys.exit(f"no module tree beside {args.image}: give --modules or `kernsurf fetch` the package")
    with tempfile.TemporaryDirectory() as tmp:
        if args.limit:
            small = Path(tmp) / "tree"
            for rel in kmod.list_modules(tree)[: args.limit]:
                (small / rel).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(tree / rel, small / rel)
            tree = small
        n = len(kmod.list_modules(tree))
        alone, whole = Path(tmp) / "vmlinux.db", Path(tmp) / "modules.db"
        base = _run(args.image, alone, "none")
        full = _run(args.image, whole, str(tree))
        print(f"image {args.image} with {n} modules from {tree}")
        print(f"{'':>22} {'vmlinux':>10} {'+ modules':>10}")
        # CPU time is left out: the worker pools' usage does not reach RUSAGE_CHILDREN reliably
        # (run `/usr/bin/time -v kernsurf ingest ...` for it).
        for key, label in (("wall", "wall s"), ("rss_mb", "peak RSS MB")):
            print(f"{label:>22} {base[key]:>10.1f} {full[key]:>10.1f}")
        sizes = {"vmlinux": alone.stat().st_size, "modules": whole.stat().st_size}
        print(f"{'database MB':>22} {sizes['vmlinux'] / 1e6:>10.1f} {sizes['modules'] / 1e6:>10.1f}")
        a, b = _tables(alone), _tables(whole)
        print("bytes the modules add, per table (MB):")
        for name in sorted(b, key=lambda t: a.get(t, 0) - b[t])[:14]:
            print(f"{name:>30} {(b[name] - a.get(name, 0)) / 1e6:>8.1f}")
        ca, cb = _counts(alone), _counts(whole)
        print("rows:", ", ".join(f"{t} {ca[t]} → {cb[t]}" for t in _COUNTS))


if __name__ == "__main__":
    main()
