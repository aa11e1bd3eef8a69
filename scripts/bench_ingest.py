#!/usr/bin/env python3
"""Ingest benchmark on real Debian images: wall time, peak RSS, database bytes
and rows per table. Usage: bench_ingest.py [VMLINUX ...] (default: the cached
6.1.0-56 amd64 vmlinux, then 6.1.0-55 when cached: a second build of the series).

The first image goes into an empty database; each further one is added to the
same database, showing what a second build costs. Each wall time is printed
beside the anchor measured in the same run over the same vmlinux, `pahole -j2
--btf_encode_detached` (scripts/bench_storage.py's), and their ratio."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_storage import anchor_seconds  # noqa: E402 (after the sys.path line)

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kernsurf"
TABLES = (
    "builds",
    "instances",
    "callers",
    "symbols",
    "functions",
    "prototypes",
    "prototype_params",
    "layouts",
    "struct_fields",
    "enum_values",
    "types",
    "names",
    "paths",
    "type_texts",
)


def images(args: list[str]) -> list[Path]:
    if args and args[0] in ("-h", "--help"):
        sys.exit(__doc__)
    if args:
        return [Path(a) for a in args]
    found = [
        p
        for name in (
            "linux-image-6.1.0-56-amd64-dbg_6.1.192-2_amd64",
            "linux-image-6.1.0-55-amd64-dbg_6.1.192-1_amd64",
        )
        if (p := CACHE / "debian" / name / "vmlinux").exists()
    ]
    if not found:
        sys.exit(f"no cached images under {CACHE}; run `make fetch-test-kernel` first")
    return found


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        for image in images(sys.argv[1:]):
            before = db.stat().st_size if db.exists() else 0
            start = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ingest",
                    "ingest",
                    str(image),
                    "--db",
                    str(db),
                    "--timings",
                    "--modules",
                    "none",
                ],
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                print(f"{image}: FAILED {proc.stderr.strip()[-300:]}")
                continue
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"{image.parent.name}")
            print("  " + proc.stdout.strip().replace("\n", "\n  "))
            anchor = anchor_seconds(image)
            ratio = (
                f" ({wall / anchor:.1f}x the anchor, pahole -j2 {anchor:.1f} s)" if anchor else " (no pahole)"
            )
            print(
                f"  wall {wall:.1f} s{ratio}, peak RSS of the largest process so far {peak:.0f} MB, "
                f"DB +{(db.stat().st_size - before) / 1e6:.1f} MB (total {db.stat().st_size / 1e6:.1f} MB)"
            )
        conn = sqlite3.connect(db)
        print(
            "rows: "
            + ", ".join(f"{t} {conn.execute(f'SELECT count(*) FROM {t}').fetchone()[0]}" for t in TABLES)
        )
        sizes = conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8"
        ).fetchall()
        print("largest: " + ", ".join(f"{n} {s / 1e6:.1f} MB" for n, s in sizes))


if __name__ == "__main__":
    main()
